"""The phone's one SIP account: registration with back-off, incoming calls, and
the presence it serves to watchers that subscribe to it directly.

pjsua re-registers before expiry by itself. Its own retry after a failure is a
fixed interval, so it is switched off and replaced by exponential back-off
(1 s doubling to 60 s, with jitter), reset by the next success. In direct mode
(no registrar) nothing is registered and calls go peer to peer.

Lifetimes: the account owns its calls. Every `SipCall` is adopted here when
it is made (before anything can fail) and keeps its pjsua2 `Call` until it is
released: in its DISCONNECTED callback, or in `release()`, which `SipStack.stop`
runs after hanging up and before `libDestroy`. So no pjsua2 `Call` outlives
the lib, however long other code keeps a `SipCall` (or, through a traceback,
the pjsua2 `Call` itself: `phone.sip.lifetime`). Then `release()` deletes the
pjsua account and the C++ half of this object: the `SipAccount` may live on
(calls and watchers keep it), its state readable, but asked to act it raises
`SipStackStopped` instead of failing one of pjsua's assertions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import pjsua2 as pj

from phone.config import AccountConfig, Transport
from phone.pjsua_callback import pjsua_callback
from phone.retry import Backoff, Outcome, classify
from phone.sip.admission import KEYS_PER_LINE, MediaSlots, NoMediaRoom
from phone.sip.lifetime import SipStackStopped, delete_now

if TYPE_CHECKING:
    import asyncio

    from phone.payloads.rpid import Activity
    from phone.sip.call import CallEvents, SipCall
    from phone.sip.message_stream import CallChat

    # Known to the type checker only: the call module (SDP and message-stream
    # parsers) is imported at the first call, not before the first REGISTER.
    class SipEvents(CallEvents, Protocol):
        """What the SIP layer reports to the core (all on the loop thread)."""

        def registration_changed(self, registered: bool, code: int, reason: str) -> None: ...

        def incoming_call(self, call: SipCall) -> None: ...


log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
BACKOFF_JITTER = 0.2
UNREGISTER_WAIT_S = 2.0
# By the `Activity` values (a StrEnum): the RPID parser, with lxml, is not
# imported before the first REGISTER.
PJSUA_ACTIVITIES = {
    "away": pj.PJRPID_ACTIVITY_AWAY,
    "busy": pj.PJRPID_ACTIVITY_BUSY,
    "on-the-phone": pj.PJRPID_ACTIVITY_BUSY,
}


def _with_transport(uri: str, transport: Transport) -> str:
    """Add `;transport=` so pjsua picks the configured transport for this URI."""
    if transport is Transport.UDP or ";transport=" in uri.lower():
        return uri
    return f"{uri};transport={transport.value}"


def _loose_route(uri: str) -> str:
    return uri if ";lr" in uri.lower() else f"{uri};lr"


class SipAccount(pj.Account):
    """The pjsua account, built with what it reports to and the resources it uses.

    `events` hears of registration and calls, from `report_to` on when the
    REGISTER goes out before the core exists (`phone.sip.endpoint`); `media_slots`
    counts the media sockets of live calls; `on_recovered` runs when the
    registrar answers again after failing. Its retries need the event loop,
    given by `attach`."""

    def __init__(
        self,
        config: AccountConfig,
        *,
        transport_id: int,
        local_address: str,
        events: SipEvents | None,
        media_slots: MediaSlots,
        on_recovered: Callable[[], None],
    ) -> None:
        super().__init__()
        self.config = config
        self._transport_id = transport_id
        self._local_address = local_address
        self._events = events
        self._media_slots = media_slots
        self._on_recovered = on_recovered
        self.registered = False
        self.last_code = 0
        self.last_reason = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._retry_waits_for_loop = False
        self._backoff = Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S, BACKOFF_JITTER)
        self._stopping = False
        self.stopped = False  # released: pjsua has no such account any more
        self.calls: dict[int, SipCall] = {}  # live calls by pjsua call id
        self._owned: set[SipCall] = set()  # every call whose pjsua2 Call is not deleted yet
        # The m=message line in audio calls (phone.sip.message_stream), set by the
        # plugin that carries chat; None: calls carry audio only.
        self.call_chat: CallChat | None = None

    @property
    def direct(self) -> bool:
        return self.config.registrar is None

    @property
    def registrar_uri(self) -> str | None:
        """The registrar, with the configured transport; None in direct mode."""
        registrar = self.config.registrar
        return None if registrar is None else _with_transport(registrar, self.config.transport)

    def report_to(self, events: SipEvents) -> None:
        """From now on `events` hears of the registration and the calls, and at
        once of a registration answered before it (no call can have come: see
        `SipStack.await_registration`)."""
        self._events = events
        if self.last_code:
            events.registration_changed(self.registered, self.last_code, self.last_reason)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop runs pjsip from now on: a retry that waited for it is scheduled."""
        self._loop = loop
        if self._retry_waits_for_loop:
            self._retry_waits_for_loop = False
            self._schedule_retry(self.last_code, self.last_reason)

    def start(self) -> None:
        cfg = self.config
        acfg = pj.AccountConfig()
        acfg.idUri = f'"{cfg.display_name}" <{cfg.uri}>' if cfg.display_name else cfg.uri
        acfg.sipConfig.transportId = self._transport_id
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.sipOutboundUse = 0
        media = acfg.mediaConfig.transportConfig
        media.boundAddress = media.publicAddress = self._local_address
        acfg.mediaConfig.transportConfig.port = cfg.rtp_port
        acfg.mediaConfig.transportConfig.portRange = 100 if cfg.rtp_port else 0
        if cfg.registrar is not None:
            acfg.regConfig.registrarUri = self.registrar_uri
            acfg.regConfig.timeoutSec = cfg.reg_expires
            acfg.regConfig.retryIntervalSec = 0  # our back-off instead
            acfg.regConfig.unregWaitMsec = int(UNREGISTER_WAIT_S * 1000)
            acfg.regConfig.dropCallsOnFail = False
            cred = pj.AuthCredInfo("digest", "*", cfg.username, 0, cfg.password)
            acfg.sipConfig.authCreds.append(cred)
        first_hop = cfg.outbound_proxy or cfg.registrar
        if first_hop:
            # Calls and subscriptions go through the registrar's proxy unless an
            # outbound proxy is set, as on a desk phone; ;lr makes it a loose route.
            acfg.sipConfig.proxies.append(_loose_route(_with_transport(first_hop, cfg.transport)))
        self.create(acfg)
        if self.direct:
            log.info("direct mode: %s, no registrar", cfg.uri)
        else:
            log.info("registering %s at %s", cfg.uri, cfg.registrar)

    # -- our own presence agent ------------------------------------------
    def serve_presence(self, basic_open: bool, activity: Activity | None, note: str | None) -> None:
        """What a SUBSCRIBE to our own address is told (RFC 3856 section 3: the
        phone is its own presence agent when no server is one). pjsua's presence
        server accepts such subscriptions and NOTIFYs every watcher when this
        changes, as PIDF with RPID (RFC 4480); pjsua knows only the `away` and
        `busy` activities, so on-the-phone is sent as busy with its note."""
        self._check_running("serve presence")
        status = pj.PresenceStatus()
        status.status = (
            pj.PJSUA_BUDDY_STATUS_ONLINE if basic_open else pj.PJSUA_BUDDY_STATUS_OFFLINE
        )
        unknown = pj.PJRPID_ACTIVITY_UNKNOWN
        status.activity = unknown if activity is None else PJSUA_ACTIVITIES.get(activity, unknown)
        status.note = note or ""
        self.setOnlineStatus(status)

    # -- registration ---------------------------------------------------
    @pjsua_callback()
    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        info = self.getInfo()
        code, reason = int(prm.code), str(prm.reason)
        registered = bool(info.regIsActive) and 200 <= code < 300
        changed = registered != self.registered or code != self.last_code
        self.registered, self.last_code, self.last_reason = registered, code, reason
        if registered:
            recovered = self._backoff.failing
            self._backoff.reset()
            if changed:
                log.info("registered as %s (expires %ss)", self.config.uri, info.regExpiresSec)
            if recovered:
                self._on_recovered()
        elif self._stopping:
            log.info("unregistered (%s %s)", code, reason)
        else:
            self._schedule_retry(code, reason)
        if changed and self._events is not None:
            self._events.registration_changed(registered, code, reason)

    def _schedule_retry(self, code: int, reason: str) -> None:
        if self._retry is not None:
            return
        if self._loop is None:
            self._retry_waits_for_loop = True
            return
        delay = self._backoff.delay()
        log.warning("registration failed (%s %s), retrying in %.1fs", code, reason, delay)
        self._retry = self._loop.call_later(delay, self._register_again)

    def register_now(self, why: str) -> None:
        """Register at once instead of waiting: the registrar is reachable again
        while a retry waits on its back-off, or it has lost our binding. Not
        after a refusal (401, 403...): retrying those sooner changes nothing."""
        if self._stopping or self.direct:
            return
        if not self.registered and classify(self.last_code or None) is not Outcome.RETRY:
            return
        log.info("registering again now: %s", why)
        if self._retry is not None:
            self._retry.cancel()
        self._register_again()

    def _register_again(self) -> None:
        self._retry = None
        if self._stopping:
            return
        try:
            self.setRegistration(True)
        except pj.Error as exc:
            log.warning("REGISTER not sent: %s", exc.info())
            self._schedule_retry(0, exc.reason)

    # -- calls ----------------------------------------------------------
    def _refuse_incoming(self, prm: pj.OnIncomingCallParam) -> None:
        """An incoming call whose handling failed is refused 500, unless it
        already was. Without a `SipCall` for it pjsua answers 500 itself; with
        one, pjsua leaves it to us and it would ring unanswered."""
        for call in list(self._owned):
            if call.info.id == prm.callId and not call.rejected:
                call.reject(500)

    @pjsua_callback(fallback=_refuse_incoming)
    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        from phone.sip.call import SipCall

        assert self._events is not None  # requests wait for the core (SipStack.attach)
        call = SipCall.incoming(self, self._events, prm.callId, prm.rdata.wholeMsg)
        self.calls[call.info.id] = call
        self._media_slots.claim(call.sip_call_id)
        self._events.incoming_call(call)

    def make_call(self, uri: str, remote_name: str | None) -> SipCall:
        """Place a call (pjsua offers one audio line); NoMediaRoom while a burst of
        incoming calls holds the media sockets."""
        self._check_running(f"call {uri}")
        slots = self._media_slots
        # An offer with chat has a second audio line, overwritten as m=message
        # (phone.sip.message_stream), but pjsua opens its sockets all the same.
        keys = KEYS_PER_LINE * (2 if self.call_chat is not None else 1)
        if not slots.room_for(keys):
            raise NoMediaRoom("no free media sockets")
        from phone.sip.call import SipCall

        assert self._events is not None  # the core places calls once it hears of them
        call = SipCall.outgoing(self, self._events, uri, remote_name)
        slots.hold(call.sip_call_id, keys)
        slots.claim(call.sip_call_id)
        self.calls[call.info.id] = call
        return call

    def forget(self, call: SipCall) -> None:
        """The call is over: pjsua has closed its media, and its id may now be
        given to another call."""
        if self.calls.get(call.info.id) is call:
            del self.calls[call.info.id]
        self._media_slots.release(call.sip_call_id)

    def adopt(self, call: SipCall) -> None:
        self._owned.add(call)

    def disown(self, call: SipCall) -> None:
        """`call` has deleted its pjsua2 Call (`SipCall.release`)."""
        self._owned.discard(call)

    # -- shutdown -------------------------------------------------------
    async def unregister(self) -> None:
        """Unregister (Expires: 0) and wait briefly for the answer."""
        self._stopping = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.direct or not self.registered or self.stopped:
            return
        import asyncio  # the REGISTER went out before asyncio was imported (phone.cli)

        try:
            self.setRegistration(False)
        except pj.Error as exc:
            log.warning("un-REGISTER not sent: %s", exc.reason)
            return
        deadline = asyncio.get_running_loop().time() + UNREGISTER_WAIT_S
        while self.registered and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)  # the SIP poll task delivers the answer

    def release(self) -> None:
        """Delete every pjsua2 Call, then the pjsua account and this object's
        C++ half (before libDestroy); idempotent."""
        if self.stopped:
            return
        self._stopping = self.stopped = True
        for call in list(self._owned):
            call.release()
        self.calls.clear()
        try:
            self.shutdown()
        except pj.Error as exc:
            log.debug("account shutdown: %s", exc.reason)
        delete_now(self)

    def _check_running(self, action: str) -> None:
        if self.stopped:
            raise SipStackStopped(f"{action}: the SIP stack is stopped")
