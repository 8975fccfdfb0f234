"""One SIP call (an INVITE session) as pjsua2 sees it, reported as a `CallInfo`.

pjsua2's invite states map onto the phone's: CALLING → calling; a 180 heard or
our own ringing → ringing; a 183 → early; CONFIRMED; DISCONNECTED with the
final status (404, 486, ...), which the screen shows.

Lifetimes. pjsua2's `Call` destructor tells pjsua to forget the call
(`pjsua_call_set_user_data`), which asserts and aborts the process once
`libDestroy` has run. So the `pj.Call` (`_PjCall`, a SWIG director) is private
to its `SipCall`, and `SipCall.release()` deletes its C++ half there and then
(`phone.sip.lifetime`), even if a traceback still holds the Python object.
The `SipCall` is a handle that anyone may keep (the phone's list, a timer, a
plugin): after `release()` it still answers `info` and its actions do nothing,
or raise `SipStackStopped` once the stack has stopped. Who releases is written
in `SipAccount`'s docstring.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Protocol

import pjsua2 as pj

from phone.calls import CallInfo, CallState, Direction
from phone.pjsua_callback import pjsua_callback
from phone.sip.lifetime import SipStackStopped, delete_now
from phone.sip.message import MessageError, SipMessage
from phone.sip.message_stream import CallMessageStream, offer_call_setting
from phone.sip.request import ProgressCallback, ReferProgress
from phone.sip.sdp import MessageSession, SdpError
from phone.uri import SipUriError, header_params, parse_name_addr

if TYPE_CHECKING:
    from phone.sip.account import SipAccount

log = logging.getLogger(__name__)

REOFFER_TRIES = 10  # a re-INVITE pjsua refuses while another INVITE is open...
REOFFER_DELAY = 0.2  # ...is tried again after this many seconds
GLARE_TRIES = 5  # a re-INVITE answered 491 is sent again at most this many times


def glare_wait(owns_call_id: bool) -> float:
    """Seconds before a re-INVITE answered 491 Request Pending is sent again
    (RFC 3261 section 14.1): random, in units of 10 ms, 2.1 to 4 s for the UA
    that generated the Call-ID (placed the call), 0 to 2 s for the other, so
    the two re-INVITEs that crossed do not cross again."""
    low, high = (210, 400) if owns_call_id else (0, 200)
    return random.randint(low, high) / 100


class CallEvents(Protocol):
    """What a call reports to the core (on the loop thread)."""

    def call_changed(self, call: SipCall) -> None: ...

    def call_media_ready(self, call: SipCall) -> None: ...


def _remote_identity(name_addr: str) -> tuple[str | None, str]:
    """Display name and bare URI of a From/To value; the raw text if it won't parse."""
    try:
        name, uri = parse_name_addr(name_addr)
    except ValueError:
        return None, name_addr.strip().strip("<>")
    return name, str(uri)


def _read_contact(info: CallInfo, whole_message: str) -> None:
    """Note the remote Contact of a received INVITE or response, and whether it
    names a focus (`isfocus`, RFC 4579 §3.3): pjsua's CallInfo.remoteContact
    prints only the URI, without the header parameters."""
    try:
        contact = SipMessage.parse(whole_message.encode()).header("contact")
    except MessageError:
        return
    if not contact or contact == info.remote_contact:
        return
    info.remote_contact = contact
    try:
        info.isfocus = "isfocus" in header_params(contact)
    except SipUriError:
        info.isfocus = False


class _PjCall(pj.Call):
    """The pjsua2 call object: pjsua's callbacks arrive here and go to its owner.

    Its `SipCall` holds it and deletes it in `SipCall.release()`, never the
    garbage collector at some later time. A callback that raises is logged
    (`phone.pjsua_callback`)."""

    def __init__(self, owner: SipCall, account: SipAccount, pjsua_id: int) -> None:
        super().__init__(account, pjsua_id)
        self.owner: SipCall | None = owner

    @pjsua_callback()
    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        if self.owner is not None:
            self.owner.state_changed(self.getInfo(), prm.e)

    @pjsua_callback()
    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        if self.owner is not None:
            self.owner.media_changed()

    @pjsua_callback()
    def onCallSdpCreated(self, prm: pj.OnCallSdpCreatedParam) -> None:
        if self.owner is not None:
            self.owner.sdp_created(prm)

    @pjsua_callback()
    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        if self.owner is not None:
            self.owner.tsx_state(prm)

    def _refuse_refer(self, prm: pj.OnCallTransferRequestParam) -> None:
        """A REFER whose handling failed is refused 500: accepted without a
        new call of ours, pjsua would report that call through this one."""
        prm.statusCode = 500
        prm.newCall = None

    @pjsua_callback(fallback=_refuse_refer)
    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:
        if self.owner is not None:
            self.owner.transfer_requested(prm)

    @pjsua_callback()
    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        if self.owner is not None and self.owner.on_transfer is not None:
            self.owner.on_transfer(
                ReferProgress(prm.statusCode, str(prm.reason), bool(prm.finalNotify))
            )


class SipCall:
    """A call the phone can act on; owns its pjsua2 call until `release()`.

    It reports to `events`."""

    def __init__(
        self,
        account: SipAccount,
        events: CallEvents,
        info: CallInfo,
        pjsua_id: int = pj.PJSUA_INVALID_ID,
    ):
        self.account = account
        self._events = events
        self.info = info
        self.audio_ports: list[int] = []  # bridge ports the phone connected
        self.rejected = False  # a final answer >= 300 is on its way
        self.sip_call_id = ""  # the Call-ID header
        # The call's m=message line, when a plugin carries chat in calls.
        self.message_stream: CallMessageStream | None = None
        chat = account.call_chat
        if chat is not None:
            self.message_stream = CallMessageStream(
                chat.local_path,
                offer=info.direction is Direction.OUT,
                answer_lines=chat.answer_lines,
                on_moved=self._chat_moved,
                on_ended=self._chat_ended,
            )
        self._pj: _PjCall | None = _PjCall(self, account, pjsua_id)
        self._lent_media: list[pj.AudioMedia] = []  # given out by `audio_media`
        account.adopt(self)  # from here on, released at the latest when the account is
        self.on_transfer: ProgressCallback | None = None  # a REFER we sent in this call
        self._chat_end_sent = False  # our port-0 re-INVITE awaits its final answer
        self._glare_tries = 0  # times it was answered 491 and sent again

    @classmethod
    def incoming(
        cls,
        account: SipAccount,
        events: CallEvents,
        pjsua_id: int,
        request: str,
    ) -> SipCall:
        info = CallInfo(
            id=pjsua_id,
            remote_uri="",
            remote_name=None,
            direction=Direction.IN,
            state=CallState.RINGING,
        )
        call = cls(account, events, info, pjsua_id)
        assert call._pj is not None
        ci = call._pj.getInfo()
        call.sip_call_id = str(ci.callIdString)
        log.debug("remote %r contact %r", ci.remoteUri, ci.remoteContact)
        info.remote_name, info.remote_uri = _remote_identity(ci.remoteUri)
        _read_contact(info, request)
        log.info("incoming call from %s", info.remote_uri)
        return call

    @classmethod
    def outgoing(
        cls,
        account: SipAccount,
        events: CallEvents,
        uri: str,
        remote_name: str | None,
    ) -> SipCall:
        """Send the INVITE; pj.Error (after releasing the call) if pjsua refuses."""
        info = CallInfo(
            id=-1,
            remote_uri=uri,
            remote_name=remote_name,
            direction=Direction.OUT,
            state=CallState.CALLING,
        )
        call = cls(account, events, info)
        assert call._pj is not None
        prm = pj.CallOpParam(True)
        if call.message_stream is not None:
            offer_call_setting(prm.opt)
        log.info("calling %s", uri)
        try:
            call._pj.makeCall(uri, prm)
        except pj.Error:
            call.release()
            raise
        info.id = call._pj.getId()
        call.sip_call_id = str(call._pj.getInfo().callIdString)
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
        pj_call = self._live(f"answer {code}")
        if pj_call is None:
            return
        prm = pj.CallOpParam()
        prm.statusCode = code
        try:
            if code < 300:
                pj_call.answer(prm)
            else:
                pj_call.hangup(prm)
        except pj.Error as exc:
            log.warning("answer %s failed: %s", code, exc.reason)

    def end(self) -> None:
        """Hang up (BYE) or cancel (CANCEL), whatever the state needs."""
        pj_call = self._live("hang up")
        if pj_call is None:
            return
        try:
            pj_call.hangup(pj.CallOpParam())
        except pj.Error as exc:
            log.debug("hangup: %s", exc.reason)

    def transfer(self, refer_to: str, on_progress: ProgressCallback | None) -> None:
        """Send a REFER in this call's dialog (RFC 3515; RFC 4579 §5.5 asks a
        participant to join a room this way); its sipfrag NOTIFYs go to
        `on_progress`. Raises pj.Error when pjsua refuses."""
        pj_call = self._live("transfer")
        if pj_call is None:
            raise RuntimeError("the call is over")
        self.on_transfer = on_progress
        pj_call.xfer(refer_to, pj.CallOpParam(True))

    def end_chat(self) -> bool:
        """End this call's chat while the audio goes on: a re-INVITE whose
        m=message line has port 0 (RFC 3264 section 8.2, RFC 4975 section 8),
        so the peer closes it too. False when the call has no chat to end."""
        stream = self.message_stream
        if self.info.state is not CallState.CONFIRMED or stream is None or not stream.end():
            return False
        self._glare_tries = 0
        self._offer_chat_end(REOFFER_TRIES)
        return True

    def _offer_chat_end(self, tries: int) -> None:
        """The re-INVITE of `end_chat`; pjsua refuses one while an INVITE
        transaction of the dialog is still open (the peer's, whose ACK has not
        come), so it is tried again a little later. A retry does nothing once
        the call is over, or the peer's offer started the chat again."""
        pj_call, stream = self._pj, self.message_stream
        if pj_call is None or self.info.state is not CallState.CONFIRMED:
            return
        if stream is None or not stream.ended:
            return
        self._chat_end_sent = True
        try:
            pj_call.reinvite(pj.CallOpParam())
        except pj.Error as exc:
            self._chat_end_sent = False
            if tries <= 1:
                log.warning("call with %s: chat end not offered: %s", self.info.remote_uri,
                            exc.reason)  # fmt: skip
                return
            asyncio.get_running_loop().call_later(REOFFER_DELAY, self._offer_chat_end, tries - 1)
            return
        log.info("call with %s: chat ended, offered with its line at port 0", self.info.remote_uri)

    def _live(self, action: str) -> _PjCall | None:
        """The pjsua2 call to act on; None once released (the call is over, a
        late press does nothing); SipStackStopped once the stack has stopped,
        as acting then is a bug of the caller's."""
        if self._pj is None:
            if self.account.stopped:
                raise SipStackStopped(
                    f"{action} the call with {self.info.remote_uri}: the SIP stack is stopped"
                )
            log.debug("%s: the call is already released", action)
        return self._pj

    def release(self) -> None:
        """Delete the pjsua2 call (pjsua hangs it up if it is still active).

        Runs while the lib is alive, and is idempotent. The C++ call is deleted
        here, whoever else still holds the Python object (`phone.sip.lifetime`).
        The handle stays usable: `info` keeps the last state, actions do
        nothing (raise `SipStackStopped` once the stack has stopped)."""
        pj_call, self._pj = self._pj, None
        if pj_call is None:
            return
        pj_call.owner = None
        self.account.disown(self)
        # Inside onCallState (DISCONNECTED) too: pjsua2 allows deleting the call
        # there, and nothing of it is touched once the callback returns.
        delete_now(pj_call)
        for media in self._lent_media:
            delete_now(media)  # ~AudioMedia does nothing: only detached
        self._lent_media.clear()

    # -- pjsua2 events (loop thread, inside libHandleEvents) -------------
    def state_changed(self, ci: pj.CallInfo, event: pj.SipEvent) -> None:
        info = self.info
        if info.id < 0:  # a call pjsua placed for a REFER we took: now it has an id
            self.account.calls[ci.id] = self
        info.id = ci.id
        if (
            event.type == pj.PJSIP_EVENT_TSX_STATE
            and event.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG
        ):
            _read_contact(info, str(event.body.tsxState.src.rdata.wholeMsg))
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
        try:
            self._events.call_changed(self)
        finally:
            if state is CallState.DISCONNECTED:
                # pjsua has dropped the call and may give its id to the next
                # one: forget it now, in this callback, before anything else
                # can arrive, even if the core failed to take the news.
                self.account.forget(self)
                self.release()

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

    def sdp_created(self, prm: pj.OnCallSdpCreatedParam) -> None:
        if self.message_stream is not None:
            try:
                self.message_stream.on_sdp_created(prm)
            except SdpError as exc:
                log.warning("call with %s: no message stream: %s", self.info.remote_uri, exc)

    def tsx_state(self, prm: pj.OnCallTsxStateParam) -> None:
        if self._chat_end_sent:
            self._chat_end_answered(prm.e)
        if self.message_stream is not None:
            self.message_stream.on_tsx_state(prm)

    def _chat_end_answered(self, event: pj.SipEvent) -> None:
        """The final answer to our chat-end re-INVITE. pjsua gives up on a 491
        (it crossed the peer's re-INVITE), so it is sent again after
        `glare_wait` (RFC 3261 section 14.1)."""
        if event.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = event.body.tsxState.tsx
        if tsx.role != pj.PJSIP_ROLE_UAC or tsx.method != "INVITE" or tsx.statusCode < 200:
            return
        self._chat_end_sent = False
        if tsx.statusCode != 491:
            return
        remote = self.info.remote_uri
        if self._glare_tries >= GLARE_TRIES:
            log.warning("call with %s: chat end answered 491 %d times, given up", remote,
                        self._glare_tries + 1)  # fmt: skip
            return
        self._glare_tries += 1
        wait = glare_wait(owns_call_id=self.info.direction is Direction.OUT)
        log.info("call with %s: chat end crossed the peer's re-INVITE (491), sent again in %.2f s",
                 remote, wait)  # fmt: skip
        asyncio.get_running_loop().call_later(wait, self._offer_chat_end, REOFFER_TRIES)

    def _chat_moved(self, session: MessageSession) -> None:
        """From the message stream, inside a pjsua callback: tell the plugin after it."""
        chat = self.account.call_chat
        if chat is not None and chat.on_moved is not None:
            asyncio.get_running_loop().call_soon(chat.on_moved, self.info.id, session)

    def _chat_ended(self) -> None:
        """From the message stream, inside a pjsua callback: tell the plugin after it."""
        chat = self.account.call_chat
        if chat is not None and chat.on_ended is not None:
            asyncio.get_running_loop().call_soon(chat.on_ended, self.info.id)

    def transfer_requested(self, prm: pj.OnCallTransferRequestParam) -> None:
        """A REFER in this call (RFC 3515; a conference focus's room, RFC 4579
        §5.5): pjsua accepts it and dials the Refer-To target. The new call gets
        its own SipCall (owned by the account like any other): without one
        pjsua would report it through this call (it copies the call's user
        data), mixing up two calls."""
        name, uri = _remote_identity(str(prm.dstUri))
        info = CallInfo(-1, uri, name, Direction.OUT, CallState.CALLING)
        referred = SipCall(self.account, self._events, info)
        prm.newCall = referred._pj
        log.info("REFER from %s: calling %s", self.info.remote_uri, uri)

    def media_changed(self) -> None:
        self._events.call_media_ready(self)

    def rtp_packets(self) -> dict[str, float]:
        """RTP packets received and sent on the call's audio line so far, and the
        receive jitter (RFC 3550 interarrival jitter, mean and max, ms), from
        its stream's RTCP counters: what `phone status` shows, how a test sees
        audio flow again after a network outage, and how late packets are
        taken in. Zeros without a stream."""
        none = {"rtp_rx": 0, "rtp_tx": 0, "rtp_jitter_ms": 0.0, "rtp_jitter_max_ms": 0.0}
        if self._pj is None:
            return none
        try:
            stat = self._pj.getStreamStat(0).rtcp
        except pj.Error:
            return none
        jitter = stat.rxStat.jitterUsec
        return {
            "rtp_rx": int(stat.rxStat.pkt),
            "rtp_tx": int(stat.txStat.pkt),
            "rtp_jitter_ms": round(jitter.mean / 1000, 2) if jitter.n else 0.0,
            "rtp_jitter_max_ms": round(jitter.max / 1000, 2) if jitter.n else 0.0,
        }

    def audio_media(self) -> list[pj.AudioMedia]:
        """The call's active audio streams (usually one; none once released).

        They are the call's until `release()`, which detaches them: used after
        libDestroy they would fail pjmedia's assertions, so from then on they
        raise TypeError instead."""
        if self._pj is None:
            return []
        media = []
        info = self._pj.getInfo()  # keep it alive: the media vector points into it
        for i, mi in enumerate(info.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                media.append(self._pj.getAudioMedia(i))
        self._lent_media.extend(media)
        return media
