"""Call admission: refuse a call pjmedia has no room for, before pjsua opens its media.

pjsua gives each audio line of a call an RTP and an RTCP socket, registered in
pjmedia's own ioqueue (64 keys in the pjsua2-python build:
PJ_IOQUEUE_MAX_HANDLES). For an incoming INVITE it opens them at once, for every
acceptable `m=audio` line of the offer (up to 16), before the application hears
of the call. A closed socket's key goes back to the ioqueue's free list only
PJ_IOQUEUE_KEY_FREE_DELAY (500 ms) after it was unregistered, and
`pj_ioqueue_register_sock2` then aborts the process (a compiled-in `pj_assert`
on the empty free list) instead of failing. So 32 one-line calls in half a
second (a flood of INVITE and CANCEL from anyone on the LAN), or two INVITEs
of 16 audio lines, killed the phone.

`MediaSlots` counts those keys ahead of pjlib: what each call holds from its
INVITE until it ends, then for the free delay. `CallAdmission` is a request
hook (`phone.sip.rawsip`, before the dialog layer and pjsua): a new call that
would not fit gets 486 Busy Here with Retry-After (RFC 3261 section 21.4.24),
a re-INVITE adding lines that do not fit gets 500 with Retry-After (section
14.2). A burst of refusals is logged once when it starts and once when it is
over.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from phone.sip.message import MessageError, SipMessage
from phone.sip.rawsip import RawSip, Responder

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

MEDIA_KEYS = 64  # PJ_IOQUEUE_MAX_HANDLES: keys in pjmedia's ioqueue
KEY_FREE_DELAY_S = 0.5  # PJ_IOQUEUE_KEY_FREE_DELAY
KEYS_PER_LINE = 2  # RTP and RTCP (pjsua does not mux them unless asked)
MAX_LINES = 16  # PJMEDIA_MAX_SDP_MEDIA: pjsua reads no more m-lines than this
MARGIN_KEYS = 4  # never let the count reach pjlib's limit exactly
RETRY_AFTER_LIVE_S = 10  # Retry-After when live calls, not closing sockets, fill the room
BURST_QUIET_S = 5.0  # a burst of refusals is over after this long without one

_AUDIO_LINE = re.compile(rb"^m=audio[ \t]+(\d+)", re.MULTILINE)


def audio_lines(request: SipMessage) -> int:
    """How many audio lines pjsua will open sockets for, at most, for this INVITE.

    Every `m=audio` line with a port is counted, in any body (multipart too,
    or SDP pjsua will reject), so this is an upper bound. Without an offer
    pjsua makes one with a single audio line when the call is answered.
    """
    if not request.body:
        return 1
    lines = sum(1 for match in _AUDIO_LINE.finditer(request.body) if int(match[1]) != 0)
    return min(lines, MAX_LINES)


@dataclass
class _Hold:
    """The keys a live call holds."""

    keys: int
    claimed: bool = False  # pjsua made a call of it (we heard of the call)


class NoMediaRoom(RuntimeError):
    """A call cannot be placed now: its media sockets would not fit."""

    @property
    def reason(self) -> str:  # as pjsua2's Error, for the screen
        return str(self)


class MediaSlots:
    """The account of pjmedia's ioqueue keys: held by live calls, then closing.

    Calls are known by their Call-ID. A call holds its keys from `hold` (its
    INVITE, or `makeCall`) until `release`; then they stay taken for the free
    delay. `settle` releases a held INVITE that pjsua never made a call of.
    """

    def __init__(
        self,
        capacity: int = MEDIA_KEYS - MARGIN_KEYS,
        free_delay: float = KEY_FREE_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.free_delay = free_delay
        self._clock = clock
        self._live: dict[str, _Hold] = {}
        self._closing: deque[tuple[float, int]] = deque()  # (free at, keys), oldest first

    def in_use(self) -> int:
        now = self._clock()
        while self._closing and self._closing[0][0] <= now:
            self._closing.popleft()
        return sum(h.keys for h in self._live.values()) + sum(k for _, k in self._closing)

    def holds(self, call_id: str) -> bool:
        return call_id in self._live

    def room_for(self, keys: int, call_id: str | None = None) -> bool:
        """Whether `keys` fit, for a new call or in all for a live one (counting
        what it holds already)."""
        held = self._live[call_id].keys if call_id in self._live else 0
        return self.in_use() + max(0, keys - held) <= self.capacity

    def hold(self, call_id: str, keys: int) -> None:
        hold = self._live.setdefault(call_id, _Hold(0))
        hold.keys = max(hold.keys, keys)

    def claim(self, call_id: str) -> None:
        """pjsua made a call of this INVITE: its keys are held until the call ends."""
        if call_id in self._live:
            self._live[call_id].claimed = True

    def settle(self, call_id: str) -> None:
        """After pjsua handled the INVITE: without a call, its sockets are closed."""
        hold = self._live.get(call_id)
        if hold is not None and not hold.claimed:
            self.release(call_id)

    def release(self, call_id: str) -> None:
        hold = self._live.pop(call_id, None)
        if hold is not None and hold.keys:
            self._closing.append((self._clock() + self.free_delay, hold.keys))

    def retry_after(self, keys: int) -> int:
        """Whole seconds until `keys` more fit, as far as closing keys tell."""
        free = self.capacity - self.in_use()
        now = self._clock()
        for free_at, closing in self._closing:
            free += closing
            if free >= keys:
                return max(1, math.ceil(free_at - now))
        return RETRY_AFTER_LIVE_S


class CallAdmission:
    """The INVITE hook that keeps calls within `MediaSlots`."""

    def __init__(self, raw: RawSip, slots: MediaSlots, loop: asyncio.AbstractEventLoop) -> None:
        self.slots = slots
        self.refused = 0  # since start
        self._raw = raw
        self._loop = loop
        self._burst_started = 0.0
        self._burst_refused = 0
        self._last_refusal = 0.0
        self._burst_timer: asyncio.TimerHandle | None = None
        raw.on_request("INVITE", self._on_invite)

    def close(self) -> None:
        self._raw.remove_handler("INVITE", self._on_invite)
        if self._burst_timer is not None:
            self._burst_timer.cancel()
            self._burst_timer = None
            self._log_burst_over()

    def _on_invite(self, request: SipMessage, respond: Responder) -> bool:
        try:
            call_id = request.call_id
            in_dialog = request.to.tag is not None
        except MessageError:
            return False  # pjsip answers it 400
        keys = KEYS_PER_LINE * audio_lines(request)
        if in_dialog and not self.slots.holds(call_id):
            return False  # not a pjsua call's dialog (pjsip answers 481, or a chat session)
        if self.slots.room_for(keys, call_id):
            self.slots.hold(call_id, keys)
            if not in_dialog:
                self._loop.call_soon(self.slots.settle, call_id)
            return False
        retry = self.slots.retry_after(keys)
        # RFC 3261: 486 for a new call (section 21.4.24), 500 for a re-INVITE (14.2).
        respond(500 if in_dialog else 486, (("Retry-After", str(retry)),))
        self._count_refusal(request, keys)
        return True

    def _count_refusal(self, request: SipMessage, keys: int) -> None:
        now = self._loop.time()
        self.refused += 1
        self._last_refusal = now
        if self._burst_refused == 0:
            self._burst_started = now
            log.warning(
                "too many calls at once: refusing calls with 486 until media sockets are free "
                "(%d of %d in use, %d more wanted; first from %r)",
                self.slots.in_use(),
                self.slots.capacity,
                keys,
                request.header("from"),
            )
            self._burst_timer = self._loop.call_later(BURST_QUIET_S, self._end_burst)
        self._burst_refused += 1

    def _end_burst(self) -> None:
        quiet_for = self._loop.time() - self._last_refusal
        if quiet_for < BURST_QUIET_S:
            self._burst_timer = self._loop.call_later(BURST_QUIET_S - quiet_for, self._end_burst)
            return
        self._burst_timer = None
        self._log_burst_over()

    def _log_burst_over(self) -> None:
        log.info(
            "call burst over: calls refused: %d in %.1f s",
            self._burst_refused,
            self._last_refusal - self._burst_started,
        )
        self._burst_refused = 0
