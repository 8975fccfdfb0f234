"""Re-INVITEs to the demo focus (RFC 3261 section 14, RFC 3264 section 8) from
pjsua carrying the phone's own message-stream code (phone.sip.message_stream):
hold and resume, and a re-INVITE without an offer, on a leg that dialled in and
on one the focus dialled out to for a REFER. Each 200 must carry an SDP that
fits the session: the audio direction answered (sendonly gets recvonly, RFC 3264
section 8.4), and the room chat on the MSRP path it had (RFC 4975 section 8.4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from phone.demo_focus import Focus
from phone.sip.message import SipMessage
from phone.sip.message_stream import offer_call_setting
from phone.sip.sdp import SessionDescription, find_message
from tests.sip.conftest import sip_transports
from tests.sip.test_message_stream import StreamCall, few_codecs

__all__ = ["few_codecs", "sip_transports"]

pj = pytest.importorskip("pjsua2")

ROOMS = {"team": "Team meeting"}


class RecordingCall(StreamCall):  # type: ignore[misc]
    """A pjsua call with the phone's message stream that keeps every SDP the focus
    sent: its first offer (a dial-out's INVITE) and each 2xx to an INVITE (an
    answer, or the offer to a re-INVITE without one)."""

    def __init__(self, account: Any, offer: bool, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, offer, call_id)
        self.focus_sdp: list[bytes] = []

    def onCallSdpCreated(self, prm: Any) -> None:  # noqa: N802 (pjsua2 callback)
        super().onCallSdpCreated(prm)
        if prm.remSdp.wholeSdp and not self.focus_sdp:
            self.focus_sdp.append(prm.remSdp.wholeSdp.encode())

    def onCallTsxState(self, prm: Any) -> None:  # noqa: N802
        super().onCallTsxState(prm)
        if prm.e.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        state = prm.e.body.tsxState
        if state.type != pj.PJSIP_EVENT_RX_MSG or state.tsx.method != "INVITE":
            return
        if 200 <= state.tsx.statusCode < 300:
            response = SipMessage.parse(state.src.rdata.wholeMsg.encode())
            self.focus_sdp.append(response.body)


class RoomAccount(pj.Account):  # type: ignore[misc]
    """Answers the focus's dial-out at once, as a person picking up."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[RecordingCall] = []

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        call = RecordingCall(self, offer=False, call_id=prm.callId)
        self.calls.append(call)
        answer = pj.CallOpParam()
        answer.statusCode = 200
        call.answer(answer)


@pytest.fixture
def accounts(
    pj_endpoint: Any, sip_transports: Any, few_codecs: None
) -> Iterator[dict[str, RoomAccount]]:
    """Two people on this pjsua: alice, who dials in, and bob, whom the focus dials."""
    made: dict[str, RoomAccount] = {}
    for user in ("alice", "bob"):
        config = pj.AccountConfig()
        config.idUri = f"sip:{user}@127.0.0.1:{sip_transports.udp_port}"
        config.mediaConfig.transportConfig.port = 0
        config.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        made[user] = RoomAccount()
        made[user].create(config)
    yield made
    pj_endpoint.hangupAllCalls()
    for _ in range(50):
        pj_endpoint.libHandleEvents(5)
    for account in made.values():
        account.calls.clear()
        account.shutdown()


@pytest.fixture
def focus() -> Iterator[Focus]:
    focus = Focus(None, ROOMS).start()
    yield focus
    focus.stop()


def wait(ep: Any, condition: Any, what: str, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        ep.libHandleEvents(5)


def dial_in(account: RoomAccount, ep: Any, focus: Focus) -> RecordingCall:
    call = RecordingCall(account, offer=True)
    account.calls.append(call)  # released by the fixture, after the hang-up
    prm = pj.CallOpParam(True)
    offer_call_setting(prm.opt)
    call.makeCall(focus.room_uri("team"), prm)
    wait(ep, lambda: call.stream.session is not None, "the room's chat agreed")
    wait(ep, lambda: call.getInfo().state == pj.PJSIP_INV_STATE_CONFIRMED, "in the room")
    return call


def sdp(body: bytes) -> SessionDescription:
    assert body, "a 200 without SDP"
    return SessionDescription.parse(body.decode())


def audio_direction(sdp: SessionDescription) -> str:
    (audio,) = [m for m in sdp.media if m.kind == "audio"]
    directions = [line[2:] for line in audio.lines if line[2:] in DIRECTIONS]
    return directions[-1] if directions else "sendrecv"


DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def origin(description: SessionDescription) -> tuple[str, str, int]:
    """The o= line's user, session id and version."""
    (line,) = [line for line in description.session if line.startswith("o=")]
    user, session_id, version, *_ = line[2:].split()
    return user, session_id, int(version)


def audio_status(call: RecordingCall) -> int:
    info = call.getInfo()  # kept alive while its media vector is read
    return int(info.media[0].status)


def chat_path(sdp: SessionDescription) -> tuple[str, ...]:
    found = find_message(sdp)
    assert found is not None, sdp.to_text()
    return found[1].path


def check_reinvites(call: RecordingCall, ep: Any) -> None:
    """Hold, resume and a re-INVITE without an offer in `call`'s dialog with the focus."""
    first = sdp(call.focus_sdp[-1])
    session = call.stream.session
    assert session is not None
    seen = len(call.focus_sdp)

    call.setHold(pj.CallOpParam(True))
    wait(ep, lambda: len(call.focus_sdp) > seen, "the answer to hold")
    held = sdp(call.focus_sdp[-1])
    assert audio_direction(held) == "recvonly", held.to_text()
    assert chat_path(held) == session.remote_path
    wait(ep, lambda: audio_status(call) == pj.PJSUA_CALL_MEDIA_LOCAL_HOLD, "held")

    resume = pj.CallOpParam(True)
    resume.opt.flag = pj.PJSUA_CALL_UNHOLD
    call.reinvite(resume)
    wait(ep, lambda: len(call.focus_sdp) > seen + 1, "the answer to resume")
    resumed = sdp(call.focus_sdp[-1])
    assert audio_direction(resumed) == "sendrecv", resumed.to_text()
    assert chat_path(resumed) == session.remote_path
    wait(ep, lambda: audio_status(call) == pj.PJSUA_CALL_MEDIA_ACTIVE, "resumed")

    no_offer = pj.CallOpParam(True)
    no_offer.opt.flag = pj.PJSUA_CALL_NO_SDP_OFFER
    call.reinvite(no_offer)
    wait(ep, lambda: len(call.focus_sdp) > seen + 2, "the focus's offer")
    offered = sdp(call.focus_sdp[-1])
    assert audio_direction(offered) == "sendrecv", offered.to_text()
    assert chat_path(offered) == session.remote_path
    for _ in range(20):
        ep.libHandleEvents(5)
    assert call.getInfo().state == pj.PJSIP_INV_STATE_CONFIRMED
    assert audio_status(call) == pj.PJSUA_CALL_MEDIA_ACTIVE
    assert call.stream.session is not None
    assert call.stream.session.remote_path == session.remote_path
    # RFC 3264 section 8: one o= line, its version up with each change, kept without one.
    origins = [origin(description) for description in (first, held, resumed, offered)]
    assert len({o[:2] for o in origins}) == 1, origins
    assert [o[2] - origins[0][2] for o in origins] == [0, 1, 2, 2], origins


def test_reinvites_on_a_leg_that_dialled_in(
    accounts: dict[str, RoomAccount], pj_endpoint: Any, focus: Focus
) -> None:
    call = dial_in(accounts["alice"], pj_endpoint, focus)
    check_reinvites(call, pj_endpoint)


def test_reinvites_on_a_leg_the_focus_dialled_out(
    accounts: dict[str, RoomAccount], pj_endpoint: Any, focus: Focus
) -> None:
    referrer = dial_in(accounts["alice"], pj_endpoint, focus)
    bob = str(accounts["bob"].getInfo().uri)
    referrer.xfer(bob, pj.CallOpParam(True))  # REFER: the focus calls bob
    wait(pj_endpoint, lambda: bool(accounts["bob"].calls), "the focus's INVITE")
    added = accounts["bob"].calls[0]
    wait(pj_endpoint, lambda: added.stream.session is not None, "the dial-out's chat agreed")
    wait(pj_endpoint, lambda: len(focus.roster("team")) == 2, "both legs in the roster")
    check_reinvites(added, pj_endpoint)
