"""The phone's one SIP account: registration with back-off, incoming calls, and
the presence it serves to watchers that subscribe to it directly.

pjsua re-registers before expiry by itself. Its own retry after a failure is a
fixed interval, so it is switched off and replaced by exponential back-off
(1 s doubling to 60 s, with jitter), reset by the next success. In direct mode
(no registrar) nothing is registered and calls go peer to peer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

import pjsua2 as pj

from phone.config import Transport
from phone.payloads.rpid import Activity
from phone.sip.admission import KEYS_PER_LINE, NoMediaRoom
from phone.sip.call import SipCall

if TYPE_CHECKING:
    from phone.sip.endpoint import SipStack

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
UNREGISTER_WAIT_S = 2.0
PJSUA_ACTIVITIES = {
    Activity.AWAY: pj.PJRPID_ACTIVITY_AWAY,
    Activity.BUSY: pj.PJRPID_ACTIVITY_BUSY,
    Activity.ON_THE_PHONE: pj.PJRPID_ACTIVITY_BUSY,
}


def _with_transport(uri: str, transport: Transport) -> str:
    """Add `;transport=` so pjsua picks the configured transport for this URI."""
    if transport is Transport.UDP or ";transport=" in uri.lower():
        return uri
    return f"{uri};transport={transport.value}"


def _loose_route(uri: str) -> str:
    return uri if ";lr" in uri.lower() else f"{uri};lr"


class SipAccount(pj.Account):
    def __init__(self, stack: SipStack) -> None:
        super().__init__()
        self.stack = stack
        self.config = stack.account_config
        self.registered = False
        self.last_code = 0
        self.last_reason = ""
        self._retry: asyncio.TimerHandle | None = None
        self._backoff = BACKOFF_FIRST_S
        self._stopping = False
        self.calls: dict[int, SipCall] = {}

    @property
    def direct(self) -> bool:
        return self.config.registrar is None

    def start(self) -> None:
        cfg = self.config
        acfg = pj.AccountConfig()
        acfg.idUri = f'"{cfg.display_name}" <{cfg.uri}>' if cfg.display_name else cfg.uri
        acfg.sipConfig.transportId = self.stack.transport_id
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.sipOutboundUse = 0
        media = acfg.mediaConfig.transportConfig
        media.boundAddress = media.publicAddress = self.stack.local_address
        acfg.mediaConfig.transportConfig.port = cfg.rtp_port
        acfg.mediaConfig.transportConfig.portRange = 100 if cfg.rtp_port else 0
        if cfg.registrar is not None:
            acfg.regConfig.registrarUri = _with_transport(cfg.registrar, cfg.transport)
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
        status = pj.PresenceStatus()
        status.status = (
            pj.PJSUA_BUDDY_STATUS_ONLINE if basic_open else pj.PJSUA_BUDDY_STATUS_OFFLINE
        )
        unknown = pj.PJRPID_ACTIVITY_UNKNOWN
        status.activity = unknown if activity is None else PJSUA_ACTIVITIES.get(activity, unknown)
        status.note = note or ""
        self.setOnlineStatus(status)

    # -- registration ---------------------------------------------------
    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        info = self.getInfo()
        code, reason = int(prm.code), str(prm.reason)
        registered = bool(info.regIsActive) and 200 <= code < 300
        changed = registered != self.registered or code != self.last_code
        self.registered, self.last_code, self.last_reason = registered, code, reason
        if registered:
            recovered = self._backoff > BACKOFF_FIRST_S
            self._backoff = BACKOFF_FIRST_S
            if changed:
                log.info("registered as %s (expires %ss)", self.config.uri, info.regExpiresSec)
            if recovered:
                self.stack.registration_recovered()
        elif self._stopping:
            log.info("unregistered (%s %s)", code, reason)
        else:
            self._schedule_retry(code, reason)
        if changed:
            self.stack.events.registration_changed(registered, code, reason)

    def _schedule_retry(self, code: int, reason: str) -> None:
        if self._retry is not None:
            return
        delay = self._backoff * random.uniform(0.8, 1.2)
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
        log.warning("registration failed (%s %s), retrying in %.1fs", code, reason, delay)
        self._retry = asyncio.get_running_loop().call_later(delay, self._register_again)

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
    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = SipCall.incoming(self, prm.callId, prm.rdata.wholeMsg)
        self.calls[call.info.id] = call
        self.stack.media_slots.claim(call.sip_call_id)
        self.stack.events.incoming_call(call)

    def make_call(self, uri: str, remote_name: str | None) -> SipCall:
        """Place a call (pjsua offers one audio line); NoMediaRoom while a burst of
        incoming calls holds the media sockets."""
        slots = self.stack.media_slots
        if not slots.room_for(KEYS_PER_LINE):
            raise NoMediaRoom("no free media sockets")
        call = SipCall.outgoing(self, uri, remote_name)
        slots.hold(call.sip_call_id, KEYS_PER_LINE)
        slots.claim(call.sip_call_id)
        self.calls[call.info.id] = call
        self.stack.wake()
        return call

    def forget(self, call: SipCall) -> None:
        """The call has ended (or the phone stops): pjsua has closed its media."""
        self.calls.pop(call.info.id, None)
        self.stack.media_slots.release(call.sip_call_id)

    # -- shutdown -------------------------------------------------------
    async def unregister(self) -> None:
        """Unregister (Expires: 0) and wait briefly for the answer."""
        self._stopping = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.direct or not self.registered:
            return
        try:
            self.setRegistration(False)
        except pj.Error as exc:
            log.warning("un-REGISTER not sent: %s", exc.reason)
            return
        await self.stack.pump_until(lambda: not self.registered, UNREGISTER_WAIT_S)

    def release(self) -> None:
        """Drop Python references to pjsua objects before libDestroy."""
        for call in list(self.calls.values()):
            call.release()
        self.calls.clear()
        self.shutdown_account()

    def shutdown_account(self) -> None:
        try:
            super().shutdown()
        except pj.Error as exc:
            log.debug("account shutdown: %s", exc.reason)
