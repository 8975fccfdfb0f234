"""How long a dial-out of the demo focus may ring (RFC 3261 sections 9.1 and 13.2.1).

A REFER makes the focus INVITE someone (RFC 4579 section 5). Once a
provisional response came, Timer B no longer bounds that INVITE, and a phone
that rings with nobody at it would hold it, and the REFER's final NOTIFY,
forever. So the INVITE carries `Expires` (the ring limit, section 13.2.1)
and, when that time passes with no final response, the focus CANCELs it, as
that section says. The CANCEL goes only once a provisional response came
(section 9.1: before one, it could overtake the INVITE; Timer B still bounds
that wait). The callee then ends the INVITE with 487, which the focus ACKs
like any final response. If no final response comes in 64*T1 after the
CANCEL, the INVITE counts as ended (section 9.1) and times out.

A 2xx that crosses the CANCEL is kept: the CANCEL only bounded the wait for
an answer, the callee did answer, and the REFER asked for them in the room
(a CANCEL has no effect on a request that got its final response, section
9.1). The focus ACKs it and the call goes on.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from phone.sip.message import SipMessage


def expires(ring: float) -> tuple[str, str]:
    """The INVITE's Expires header for a ring limit of `ring` seconds (whole seconds)."""
    return "Expires", str(math.ceil(ring))


def cancel_for(invite: SipMessage) -> list[str]:
    """The start line and headers of the CANCEL of our `invite` (section 9.1):
    its Request-URI, top Via (so its branch), Call-ID, From, To, CSeq number
    and Route headers; no body."""
    number, _ = invite.cseq
    return [
        f"CANCEL {invite.request_uri} SIP/2.0",
        f"Via: {invite.require('via')}",
        "Max-Forwards: 70",
        f"From: {invite.require('from')}",
        f"To: {invite.require('to')}",
        f"Call-ID: {invite.call_id}",
        f"CSeq: {number} CANCEL",
        *(f"Route: {value}" for key, value in invite.headers if key == "route"),
    ]


def time_out(future: asyncio.Future[SipMessage], why: str) -> None:
    """Timer B or F, or no final response after a CANCEL: our request's wait
    ends with a TimeoutError."""
    if not future.done():
        future.set_exception(TimeoutError(why))


class RingLimit:
    """One INVITE's wait for its final response, bounded: `cancel()` runs when
    `ring` seconds pass, or at the first provisional response after that, and
    `future` fails with TimeoutError if no final response follows in `lifetime`
    (64*T1). `stop()` when the final response came."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ring: float,
        lifetime: float,
        future: asyncio.Future[SipMessage],
        cancel: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._lifetime = lifetime
        self._future = future
        self._cancel = cancel
        self._rang = False
        self._over = False
        self._cancelled = False
        self._handle = loop.call_later(ring, self._ring_over)

    def rang(self) -> None:
        """A provisional response came: a CANCEL may go from now on."""
        self._rang = True
        self._cancel_if_due()

    def stop(self) -> None:
        self._handle.cancel()

    def _ring_over(self) -> None:
        self._over = True
        self._cancel_if_due()

    def _cancel_if_due(self) -> None:
        if self._cancelled or not (self._rang and self._over) or self._future.done():
            return
        self._cancelled = True
        self._cancel()
        why = "no final response in 64*T1 after CANCEL"
        self._handle = self._loop.call_later(self._lifetime, time_out, self._future, why)
