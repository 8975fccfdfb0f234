"""Re-INVITEs to the demo focus (RFC 3261 section 14, RFC 3264 section 8) from
pjsua carrying the phone's own message-stream code (phone.sip.message_stream):
hold and resume, and a re-INVITE without an offer, on a leg that dialled in and
on one the focus dialled out to for a REFER. Each 200 must carry an SDP that
fits the session: the audio direction answered (sendonly gets recvonly, RFC 3264
section 8.4), and the room chat on the MSRP path it had (RFC 4975 section 8.4)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from phone.demo_focus import Focus
from phone.sip.message import SipMessage
from phone.sip.message_stream import offer_call_setting
from phone.sip.sdp import SessionDescription, find_message
from tests.sip.test_message_stream import (
    StreamAccount,
    StreamCall,
    few_codecs,
    release_accounts,
    stream_account,
)

__all__ = ["few_codecs"]

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


class RoomAccount(StreamAccount):  # type: ignore[misc]
    """Answers the focus's dial-out at once, as a person picking up."""

    call_class = RecordingCall


@pytest.fixture
def accounts(
    pj_endpoint: Any, sip_transports: Any, few_codecs: None
) -> Iterator[dict[str, RoomAccount]]:
    """Two people on this pjsua: alice, who dials in, and bob, whom the focus dials."""
    made = {
        user: stream_account(user, sip_transports.udp_port, RoomAccount())
        for user in ("alice", "bob")
    }
    yield made
    release_accounts(pj_endpoint, *made.values())


@pytest.fixture
def focus() -> Iterator[Focus]:
    focus = Focus(None, ROOMS).start()
    yield focus
    focus.stop()


def wait(ep: Any, condition: Any, what: str, timeout: float = 5.0) -> None:
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


def reinvite(call: RecordingCall, flag: int) -> None:
    prm = pj.CallOpParam(True)
    prm.opt.flag = flag
    call.reinvite(prm)


def check_reinvites(call: RecordingCall, ep: Any) -> None:
    """Hold, resume and a re-INVITE without an offer in `call`'s dialog with the focus."""
    session = call.stream.session
    assert session is not None
    steps = (
        ("hold", lambda: call.setHold(pj.CallOpParam(True)), "recvonly", "LOCAL_HOLD"),
        ("resume", lambda: reinvite(call, pj.PJSUA_CALL_UNHOLD), "sendrecv", "ACTIVE"),
        ("no offer", lambda: reinvite(call, pj.PJSUA_CALL_NO_SDP_OFFER), "sendrecv", "ACTIVE"),
    )
    said = [sdp(call.focus_sdp[-1])]
    for what, send, way, status in steps:
        count = len(call.focus_sdp)
        send()
        wait(ep, lambda n=count: len(call.focus_sdp) > n, f"the focus's SDP for {what}")
        said.append(sdp(call.focus_sdp[-1]))
        assert audio_direction(said[-1]) == way, (what, said[-1].to_text())
        assert chat_path(said[-1]) == session.remote_path, what
        wanted = getattr(pj, f"PJSUA_CALL_MEDIA_{status}")
        wait(ep, lambda w=wanted: audio_status(call) == w, f"the audio after {what}")
    for _ in range(20):  # the ACK with our answer to the focus's offer
        ep.libHandleEvents(5)
    assert call.getInfo().state == pj.PJSIP_INV_STATE_CONFIRMED
    assert call.stream.session is not None
    assert call.stream.session.remote_path == session.remote_path
    # RFC 3264 section 8: one o= line, its version up with each change, kept without one.
    origins = [origin(description) for description in said]
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
    (added,) = accounts["bob"].calls
    assert isinstance(added, RecordingCall)
    wait(pj_endpoint, lambda: added.stream.session is not None, "the dial-out's chat agreed")
    wait(pj_endpoint, lambda: len(focus.roster("team")) == 2, "both legs in the roster")
    check_reinvites(added, pj_endpoint)
