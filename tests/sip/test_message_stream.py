"""Audio + message calls through pjsua against a raw UDP peer: offer and answer m=message."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from phone.sip.message import SipMessage
from phone.sip.message_stream import CallMessageStream, offer_call_setting
from phone.sip.sdp import (
    MediaSection,
    MessageSession,
    MsrpMedia,
    SdpError,
    SessionDescription,
    SetupRole,
    find_message,
    local_msrp_path,
)

from .udp_peer import UdpSipPeer

pj = pytest.importorskip("pjsua2")

PEER_PATH = "msrp://127.0.0.1:2855/peer-session;tcp"


def _peer_sdp(audio_port: int, setup: str, path: str = PEER_PATH, version: int = 1) -> bytes:
    """The peer's offer; its message line in msrps for an msrps path, at port 0
    for an empty one (the peer closes the stream)."""
    protocol = "TCP/TLS/MSRP" if path.startswith("msrps:") else "TCP/MSRP"
    return (
        f"v=0\r\no=- 1 {version} IN IP4 127.0.0.1\r\ns=peer\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {audio_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        f"m=message {2855 if path else 0} {protocol} *\r\n"
        f"a=path:{path}\r\n"
        "a=accept-types:message/cpim text/plain\r\na=accept-wrapped-types:text/plain\r\n"
        f"a=setup:{setup}\r\n"
    ).encode()


class StreamCall(pj.Call):  # type: ignore[misc]
    def __init__(self, account: Any, offer: bool, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        # The stream's callbacks hold no reference to the call: a cycle would leave
        # it to the garbage collector, whose ~Call may then act on the call id of
        # a later test's call.
        self.moves: list[MessageSession] = []
        self.endings: list[None] = []  # one for each time the peer's offer ended the stream
        endings = self.endings
        self.stream = CallMessageStream(
            self.local_path,
            offer=offer,
            on_moved=self.moves.append,
            on_ended=lambda: endings.append(None),
        )
        self.states: list[int] = []

    @staticmethod
    def local_path(protocol: str) -> tuple[str, ...]:
        return (local_msrp_path("127.0.0.1", 40001, protocol),)

    def onCallSdpCreated(self, prm: Any) -> None:  # noqa: N802 (pjsua2 callback)
        self.stream.on_sdp_created(prm)

    def onCallTsxState(self, prm: Any) -> None:  # noqa: N802
        self.stream.on_tsx_state(prm)

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        self.states.append(self.getInfo().state)


class PlainOnlyCall(StreamCall):
    """A call whose MSRP has no msrps path, as behind a plain relay."""

    @staticmethod
    def local_path(protocol: str) -> tuple[str, ...]:
        if protocol != "TCP/MSRP":
            raise SdpError(f"{protocol} is not offered here")
        return StreamCall.local_path(protocol)


class StreamAccount(pj.Account):  # type: ignore[misc]
    """Answers every incoming call at once with a `call_class` call."""

    call_class: type[StreamCall] = StreamCall

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[StreamCall] = []

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        call = self.call_class(self, offer=False, call_id=prm.callId)
        self.calls.append(call)
        answer = pj.CallOpParam()
        answer.statusCode = 200
        call.answer(answer)


def stream_account(user: str, udp_port: int, account: StreamAccount) -> StreamAccount:
    """`account` created as `user` on this pjsua's UDP transport, media on loopback."""
    config = pj.AccountConfig()
    config.idUri = f"sip:{user}@127.0.0.1:{udp_port}"
    config.mediaConfig.transportConfig.port = 0
    config.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    account.create(config)
    return account


def release_accounts(ep: Any, *accounts: StreamAccount) -> None:
    """Hang up, let the BYEs go, then drop the calls before the accounts."""
    ep.hangupAllCalls()
    for _ in range(50):
        ep.libHandleEvents(5)
    for account in accounts:
        account.calls.clear()
        account.shutdown()


@pytest.fixture
def few_codecs(pj_endpoint: Any) -> Iterator[None]:
    """G722 and PCMU only, as the phone configures them: two audio lines of every
    codec exceed the SDP size pjsua hands to `onCallSdpCreated`."""
    saved = {c.codecId: c.priority for c in pj_endpoint.codecEnum2()}
    for codec_id in saved:
        keep = codec_id.lower().startswith(("g722/", "pcmu/"))
        pj_endpoint.codecSetPriority(codec_id, 200 if keep else 0)
    yield
    for codec_id, priority in saved.items():
        pj_endpoint.codecSetPriority(codec_id, priority)


@pytest.fixture
def account(pj_endpoint: Any, sip_transports: Any, few_codecs: None) -> Iterator[StreamAccount]:
    acc = stream_account("me", sip_transports.udp_port, StreamAccount())
    yield acc
    release_accounts(pj_endpoint, acc)


def _ack(peer: UdpSipPeer, ok: SipMessage, me: str, port: int, cseq: int = 1) -> None:
    peer.send(
        peer.request(
            "ACK", me, call_id=ok.call_id, from_tag="bobtag", to=ok.require("to"), cseq=cseq
        ),
        ("127.0.0.1", port),
    )


def _hang_up(peer: UdpSipPeer, ep: Any) -> None:
    """End the call while the peer still answers, so it frees its pjsua call slot."""
    ep.hangupAllCalls()
    bye = peer.receive(lambda: _pump(ep), match=lambda m: m.method == "BYE")
    assert peer.last_from is not None
    peer.send(UdpSipPeer.response(bye, 200, "OK"), peer.last_from)
    for _ in range(10):
        _pump(ep)


def _pump(ep: Any) -> None:
    ep.libHandleEvents(5)


def _wait(ep: Any, condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        ep.libHandleEvents(5)


def test_phone_offers_audio_and_message_and_learns_the_peer_path(
    account: StreamAccount, pj_endpoint: Any
) -> None:
    offer_round_trip(account, pj_endpoint)


def test_phone_answers_audio_and_message(
    account: StreamAccount, pj_endpoint: Any, sip_transports: Any
) -> None:
    answer_round_trip(account, pj_endpoint, sip_transports.udp_port)


def offer_round_trip(account: StreamAccount, pj_endpoint: Any) -> None:
    """The phone calls the raw peer with audio + message; the peer answers both."""
    peer = UdpSipPeer("bob")
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    try:
        call = StreamCall(account, offer=True)
        prm = pj.CallOpParam(True)
        offer_call_setting(prm.opt)
        call.makeCall(peer.uri, prm)
        invite = peer.receive(lambda: _pump(pj_endpoint), match=lambda m: m.method == "INVITE")
        offer = SessionDescription.parse(invite.body.decode())
        assert [m.kind for m in offer.media] == ["audio", "message"]
        found = find_message(offer)
        assert found is not None and found[1].path[0].startswith("msrp://127.0.0.1:40001/")
        assert found[1].setup is SetupRole.ACTPASS and "text/plain" in found[1].accept_types
        assert len(invite.body) < 1000
        assert peer.last_from is not None
        peer.send(
            UdpSipPeer.response(
                invite,
                200,
                "OK",
                to_tag="bobtag",
                headers=(("Contact", f"<{peer.uri}>"),),
                body=_peer_sdp(rtp.getsockname()[1], "passive"),
                content_type="application/sdp",
            ),
            peer.last_from,
        )
        peer.receive(lambda: _pump(pj_endpoint), match=lambda m: m.method == "ACK")
        _wait(pj_endpoint, lambda: call.stream.session is not None)
        session = call.stream.session
        assert session is not None
        assert session.remote_path == (PEER_PATH,)
        assert session.accept_types == ("message/cpim", "text/plain")
        assert session.local_setup is SetupRole.ACTIVE
        _hang_up(peer, pj_endpoint)
    finally:
        rtp.close()
        peer.close()


def answer_round_trip(account: StreamAccount, pj_endpoint: Any, udp_port: int) -> None:
    """The raw peer calls the phone with audio + message; the phone answers both."""
    peer = UdpSipPeer("bob")
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    try:
        me = f"sip:me@127.0.0.1:{udp_port}"
        peer.send(
            peer.request(
                "INVITE",
                me,
                call_id=f"msg-call-{secrets.token_hex(4)}",
                from_tag="bobtag",
                to=f"<{me}>",
                cseq=1,
                body=_peer_sdp(rtp.getsockname()[1], "actpass"),
                content_type="application/sdp",
            ),
            ("127.0.0.1", udp_port),
        )
        ok: SipMessage = peer.receive(lambda: _pump(pj_endpoint), match=lambda m: m.status == 200)
        _ack(peer, ok, me, udp_port)
        answer = find_message(SessionDescription.parse(ok.body.decode()))
        assert answer is not None
        _, media = answer
        assert media.port == 40001 and media.path[0].startswith("msrp://127.0.0.1:40001/")
        assert media.setup is SetupRole.ACTIVE
        assert account.calls and account.calls[-1].stream.session is not None
        assert account.calls[-1].stream.session.remote_path == (PEER_PATH,)
        _hang_up(peer, pj_endpoint)
    finally:
        rtp.close()
        peer.close()


def test_broken_message_line_declines_only_that_stream(
    account: StreamAccount, pj_endpoint: Any, sip_transports: Any
) -> None:
    peer = UdpSipPeer("bob")
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    try:
        me = f"sip:me@127.0.0.1:{sip_transports.udp_port}"
        offer = _peer_sdp(rtp.getsockname()[1], "actpass").replace(b"a=path:msrp", b"a=path:http")
        peer.send(
            peer.request(
                "INVITE",
                me,
                call_id=f"msg-call-{secrets.token_hex(4)}",
                from_tag="bobtag",
                to=f"<{me}>",
                cseq=1,
                body=offer,
                content_type="application/sdp",
            ),
            ("127.0.0.1", sip_transports.udp_port),
        )
        ok = peer.receive(lambda: _pump(pj_endpoint), match=lambda m: m.status == 200)
        _ack(peer, ok, me, sip_transports.udp_port)
        answer = SessionDescription.parse(ok.body.decode())
        assert [(m.kind, m.port == 0) for m in answer.media] == [
            ("audio", False),
            ("message", True),
        ]
        assert account.calls[-1].stream.session is None
        _hang_up(peer, pj_endpoint)
    finally:
        rtp.close()
        peer.close()


def test_answer_to_a_reoffer_of_the_same_path_keeps_our_role(
    account: StreamAccount, pj_endpoint: Any, sip_transports: Any
) -> None:
    """The peer connects (a=setup:active), then re-offers the same path with actpass
    (a hold, say): the phone's answer says passive again, the role of the live
    connection, not the active it would pick for a new one."""
    answers = _offer_in_turn(
        pj_endpoint, sip_transports.udp_port, (("active", PEER_PATH), ("actpass", PEER_PATH))
    )
    assert [a.setup for a in answers] == [SetupRole.PASSIVE, SetupRole.PASSIVE]
    session = account.calls[-1].stream.session
    assert session is not None and session.local_setup is SetupRole.PASSIVE


def test_a_reoffer_of_a_new_path_moves_the_session(
    account: StreamAccount, pj_endpoint: Any, sip_transports: Any
) -> None:
    """The peer connects (a=setup:active), then re-offers another path with actpass
    (Blink on another network, RFC 4975 section 8.4): the answer keeps our path
    and takes the role of a new connection (we connect), and the move is told
    once; a re-offer of that path again is no move."""
    moved_to = "msrp://127.0.0.1:2856/moved-session;tcp"
    offers = (("active", PEER_PATH), ("actpass", moved_to), ("actpass", moved_to))
    answers = _offer_in_turn(pj_endpoint, sip_transports.udp_port, offers)
    assert [a.setup for a in answers] == [SetupRole.PASSIVE, SetupRole.ACTIVE, SetupRole.ACTIVE]
    assert len({a.path for a in answers}) == 1  # our path stays
    call = account.calls[-1]
    assert call.stream.session is not None
    assert call.stream.session.remote_path == (moved_to,)
    assert call.stream.session.local_setup is SetupRole.ACTIVE
    assert call.moves == [call.stream.session]


def _offer_in_turn(
    pj_endpoint: Any, port: int, offers: tuple[tuple[str, str], ...]
) -> list[MsrpMedia]:
    """The phone's message line in each answer of `_answers_in_turn`."""
    lines = [find_message(answer) for answer in _answers_in_turn(pj_endpoint, port, offers)]
    assert all(line is not None for line in lines), lines
    return [line[1] for line in lines if line is not None]


def _answers_in_turn(
    pj_endpoint: Any, port: int, offers: tuple[tuple[str, str], ...]
) -> list[SessionDescription]:
    """The raw peer calls the phone with the first (a=setup, a=path), re-INVITEs
    with each next one, then hangs up: the phone's answers."""
    peer = UdpSipPeer("bob")
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    try:
        me = f"sip:me@127.0.0.1:{port}"
        call_id = f"msg-call-{secrets.token_hex(4)}"
        to = f"<{me}>"
        answers = []
        for cseq, (setup, path) in enumerate(offers, start=1):
            peer.send(
                peer.request(
                    "INVITE",
                    me,
                    call_id=call_id,
                    from_tag="bobtag",
                    to=to,
                    cseq=cseq,
                    body=_peer_sdp(rtp.getsockname()[1], setup, path, version=cseq),
                    content_type="application/sdp",
                ),
                ("127.0.0.1", port),
            )
            ok = peer.receive(
                lambda: _pump(pj_endpoint),
                match=lambda m, n=cseq: m.status == 200 and m.cseq[0] == n,
            )
            _ack(peer, ok, me, port, cseq)
            to = ok.require("to")
            answers.append(SessionDescription.parse(ok.body.decode()))
        _hang_up(peer, pj_endpoint)
        return answers
    finally:
        rtp.close()
        peer.close()


def _message_line(answer: SessionDescription) -> MediaSection:
    (section,) = [m for m in answer.media if m.kind == "message"]
    return section


def test_a_reoffer_in_msrps_moves_the_session_to_a_path_of_ours_in_msrps(
    account: StreamAccount, pj_endpoint: Any, sip_transports: Any
) -> None:
    """The peer re-offers its line in TCP/TLS/MSRP (RFC 4975 section 8.5): the
    answer is in that protocol from a new msrps path of ours, a new connection
    (told as a move), and back in TCP/MSRP likewise."""
    secure = "msrps://127.0.0.1:2856/secure-session;tcp"
    offers = (("active", PEER_PATH), ("actpass", secure), ("actpass", PEER_PATH))
    answers = _answers_in_turn(pj_endpoint, sip_transports.udp_port, offers)
    lines = [_message_line(a) for a in answers]
    assert [line.protocol for line in lines] == ["TCP/MSRP", "TCP/TLS/MSRP", "TCP/MSRP"]
    paths = [line.attribute("path") or "" for line in lines]
    assert paths[1].startswith("msrps://") and paths[2].startswith("msrp://")
    assert len(set(paths)) == 3
    call = account.calls[-1]
    assert [m.remote_path for m in call.moves] == [(secure,), (PEER_PATH,)]
    assert [m.local_path for m in call.moves] == [(paths[1],), (paths[2],)]
    assert call.endings == []


def test_a_reoffer_in_a_protocol_without_a_path_of_ours_is_declined(
    account: StreamAccount, pj_endpoint: Any, sip_transports: Any
) -> None:
    """Where the phone has no msrps path, a re-offer in TCP/TLS/MSRP gets the
    line at port 0, not an answer in the old protocol: the stream has ended."""
    account.call_class = PlainOnlyCall
    secure = "msrps://127.0.0.1:2856/secure-session;tcp"
    offers = (("active", PEER_PATH), ("actpass", secure))
    answers = _answers_in_turn(pj_endpoint, sip_transports.udp_port, offers)
    assert [_message_line(a).port == 0 for a in answers] == [False, True]
    call = account.calls[-1]
    assert call.stream.session is None and len(call.endings) == 1 and call.moves == []


def test_the_peer_closing_the_line_ends_the_stream_and_a_new_offer_starts_it_again(
    account: StreamAccount, pj_endpoint: Any, sip_transports: Any
) -> None:
    """The peer's re-offer has the message line at port 0 (RFC 3264 section 8.2):
    the stream ends, told once; a later offer of a live line starts it again,
    told as a move."""
    offers = (("active", PEER_PATH), ("actpass", ""), ("actpass", PEER_PATH))
    answers = _answers_in_turn(pj_endpoint, sip_transports.udp_port, offers)
    assert [_message_line(a).port == 0 for a in answers] == [False, True, False]
    call = account.calls[-1]
    assert len(call.endings) == 1
    assert [m.remote_path for m in call.moves] == [(PEER_PATH,)]
    assert call.stream.session is not None
