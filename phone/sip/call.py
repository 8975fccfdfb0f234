"""One SIP call (an INVITE session) as pjsua2 sees it, reported as a `CallInfo`.

pjsua2's invite states map onto the phone's: CALLING → calling; a 180 heard or
our own ringing → ringing; a 183 → early; CONFIRMED; DISCONNECTED with the
final status (404, 486, ...), which the screen shows.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import pjsua2 as pj

from phone.calls import CallInfo, CallState, Direction
from phone.uri import parse_name_addr

if TYPE_CHECKING:
    from phone.sip.account import SipAccount

log = logging.getLogger(__name__)


def _remote_identity(name_addr: str) -> tuple[str | None, str]:
    """Display name and bare URI of a From/To value; the raw text if it won't parse."""
    try:
        name, uri = parse_name_addr(name_addr)
    except ValueError:
        return None, name_addr.strip().strip("<>")
    return name, str(uri)


class SipCall(pj.Call):
    def __init__(self, account: SipAccount, info: CallInfo, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self.account = account
        self.info = info
        self.audio_ports: list[int] = []  # bridge ports the phone connected
        self.rejected = False  # a final answer >= 300 is on its way
        self.sip_call_id = ""  # the Call-ID header

    @classmethod
    def incoming(cls, account: SipAccount, call_id: int, request: str) -> SipCall:
        info = CallInfo(
            id=call_id,
            remote_uri="",
            remote_name=None,
            direction=Direction.IN,
            state=CallState.RINGING,
        )
        call = cls(account, info, call_id)
        ci = call.getInfo()
        call.sip_call_id = str(ci.callIdString)
        log.debug("remote %r contact %r", ci.remoteUri, ci.remoteContact)
        info.remote_name, info.remote_uri = _remote_identity(ci.remoteUri)
        log.info("incoming call from %s", info.remote_uri)
        return call

    @classmethod
    def outgoing(cls, account: SipAccount, uri: str, remote_name: str | None) -> SipCall:
        info = CallInfo(
            id=-1,
            remote_uri=uri,
            remote_name=remote_name,
            direction=Direction.OUT,
            state=CallState.CALLING,
        )
        call = cls(account, info)
        prm = pj.CallOpParam(True)
        log.info("calling %s", uri)
        call.makeCall(uri, prm)
        info.id = call.getId()
        call.sip_call_id = str(call.getInfo().callIdString)
        return call

    # -- actions (loop thread) -------------------------------------------
    def ring(self) -> None:
        self._answer(180)

    def accept(self) -> None:
        self._answer(200)

    def reject(self, code: int) -> None:
        self.rejected = True
        self._answer(code)

    def _answer(self, code: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        self.account.stack.wake()
        try:
            if code < 300:
                self.answer(prm)
            else:
                self.hangup(prm)
        except pj.Error as exc:
            log.warning("answer %s failed: %s", code, exc.reason)

    def end(self) -> None:
        """Hang up (BYE) or cancel (CANCEL), whatever the state needs."""
        self.account.stack.wake()
        try:
            self.hangup(pj.CallOpParam())
        except pj.Error as exc:
            log.debug("hangup: %s", exc.reason)

    def release(self) -> None:
        """Forget the pjsua object (before libDestroy)."""
        self.account.forget(self)

    # -- pjsua2 callbacks ------------------------------------------------
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        ci = self.getInfo()
        info = self.info
        info.id = ci.id
        state = self._map_state(ci)
        if state is None or (state is info.state and state is not CallState.DISCONNECTED):
            return
        info.state = state
        if state is CallState.CONFIRMED:
            info.connected_at = info.connected_at or time.time()
        elif state is CallState.DISCONNECTED:
            info.ended_at = time.time()
            info.code = int(ci.lastStatusCode)
            info.reason = str(ci.lastReason)
            log.info("call with %s ended: %s %s", info.remote_uri, info.code, info.reason)
        self.account.stack.events.call_changed(self)
        if state is CallState.DISCONNECTED:
            self.account.forget(self)

    def _map_state(self, ci: pj.CallInfo) -> CallState | None:
        s = ci.state
        if s == pj.PJSIP_INV_STATE_CALLING:
            return CallState.CALLING
        if s == pj.PJSIP_INV_STATE_INCOMING:
            return CallState.RINGING
        if s == pj.PJSIP_INV_STATE_EARLY:
            if self.info.direction is Direction.IN:
                return CallState.RINGING
            return CallState.RINGING if ci.lastStatusCode == 180 else CallState.EARLY
        if s == pj.PJSIP_INV_STATE_CONFIRMED:
            return CallState.CONFIRMED
        if s == pj.PJSIP_INV_STATE_DISCONNECTED:
            return CallState.DISCONNECTED
        return None  # NULL, CONNECTING: nothing the user needs to see

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        self.account.stack.events.call_media_ready(self)

    def audio_media(self) -> list[pj.AudioMedia]:
        """The call's active audio streams (usually one)."""
        media = []
        info = self.getInfo()  # keep it alive: the media vector points into it
        for i, mi in enumerate(info.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                media.append(self.getAudioMedia(i))
        return media
