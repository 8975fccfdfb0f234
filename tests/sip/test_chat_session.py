"""Chat-only INVITEs (only m=message, as Blink sends) answered through the pjsip hook."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from phone.sip.chat_session import ChatSession, ChatSessions, ChatSessionState
from phone.sip.digest import Credentials
from phone.sip.identity import Identity
from phone.sip.message import SipMessage
from phone.sip.rawsip import RawSip
from phone.sip.sdp import SessionDescription, SetupRole, find_message, local_msrp_path

from .test_message_stream import (  # noqa: F401 (the fixtures `account` uses)
    account,
    answer_round_trip,
    few_codecs,
    offer_round_trip,
)
from .udp_peer import UdpSipPeer

pj = pytest.importorskip("pjsua2")

BLINK_CHAT = (
    "v=0\r\no=- 3900 {version} IN IP4 127.0.0.1\r\ns=Blink\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=message 2855 TCP/MSRP *\r\na=path:msrp://127.0.0.1:2855/blinkses;tcp\r\n"
    "a=accept-types:message/cpim text/plain\r\na=accept-wrapped-types:*\r\na=setup:actpass\r\n"
)


class Chats:
    def __init__(self, raw: RawSip, ep: Any, port: int) -> None:

        self.ep = ep
        self.loop = asyncio.new_event_loop()
        self.started: list[ChatSession] = []
        self.ended: list[ChatSession] = []
        self.me = f"sip:me@127.0.0.1:{port}"
        self.target = ("127.0.0.1", port)
        self.sessions = ChatSessions(
            raw,
            self.loop,
            f"<{self.me}>",
            lambda protocol: (local_msrp_path("127.0.0.1", 40002, protocol),),
            self.started.append,
            self.ended.append,
        )

    def pump(self) -> None:
        self.ep.libHandleEvents(2)
        self.loop.run_until_complete(asyncio.sleep(0))

    def wait(self, condition: Any, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            self.pump()


@pytest.fixture(scope="module")
def chats(raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any) -> Iterator[Chats]:
    c = Chats(raw_sip, pj_endpoint, sip_transports.udp_port)
    assert c.sessions.available, c.sessions.unavailable_reason
    yield c
    c.sessions.close()
    c.loop.close()


def _invite(chats: Chats, peer: UdpSipPeer, call_id: str, body: str) -> SipMessage:
    peer.send(
        peer.request(
            "INVITE",
            chats.me,
            call_id=call_id,
            from_tag="blink",
            to=f"<{chats.me}>",
            cseq=1,
            body=body.encode(),
            content_type="application/sdp",
        ),
        chats.target,
    )
    return peer.receive(chats.pump, match=lambda m: (m.status or 0) >= 200)


def _ack(peer: UdpSipPeer, ok: SipMessage, chats: Chats, cseq: int = 1) -> None:
    peer.send(
        peer.request(
            "ACK", chats.me, call_id=ok.call_id, from_tag="blink", to=ok.require("to"), cseq=cseq
        ),
        chats.target,
    )


def _end_by_phone(chats: Chats, peer: UdpSipPeer, chat: ChatSession) -> None:
    """The phone hangs up `chat`; the peer answers its BYE."""
    chats.sessions.end(chat)
    bye = peer.receive(chats.pump, match=lambda m: m.method == "BYE")
    assert peer.last_from is not None
    peer.send(UdpSipPeer.response(bye, 200, "OK"), peer.last_from)
    chats.wait(lambda: chat in chats.ended)


def test_chat_only_invite_is_answered_and_ended_by_the_peer(chats: Chats) -> None:
    peer = UdpSipPeer("blink")
    try:
        ok = _invite(chats, peer, "chat-1", BLINK_CHAT.format(version=1))
        assert ok.status == 200 and ok.to.tag
        found = find_message(SessionDescription.parse(ok.body.decode()))
        assert found is not None
        _, media = found
        assert media.port == 40002 and media.path[0].startswith("msrp://127.0.0.1:40002/")
        assert media.setup is SetupRole.ACTIVE
        _ack(peer, ok, chats)
        chats.wait(lambda: bool(chats.started))
        chat = chats.started[-1]
        assert chat.message.remote_path == ("msrp://127.0.0.1:2855/blinkses;tcp",)
        assert chat.message.accept_types == ("message/cpim", "text/plain")

        # A re-INVITE with SDP gets the same line back.
        peer.send(
            peer.request(
                "INVITE",
                chats.me,
                call_id="chat-1",
                from_tag="blink",
                to=ok.require("to"),
                cseq=2,
                body=BLINK_CHAT.format(version=2).encode(),
                content_type="application/sdp",
            ),
            chats.target,
        )
        again = peer.receive(chats.pump, match=lambda m: (m.status or 0) >= 200)
        assert again.status == 200 and b"m=message 40002 TCP/MSRP" in again.body
        _ack(peer, again, chats, cseq=2)

        peer.send(
            peer.request(
                "BYE", chats.me, call_id="chat-1", from_tag="blink", to=ok.require("to"), cseq=3
            ),
            chats.target,
        )
        bye_ok = peer.receive(chats.pump, match=lambda m: m.status is not None)
        assert bye_ok.status == 200
        chats.wait(lambda: chat in chats.ended)
        assert chat.state is ChatSessionState.ENDED
    finally:
        peer.close()


def test_phone_ends_a_chat_session(chats: Chats) -> None:
    peer = UdpSipPeer("blink")
    try:
        ok = _invite(chats, peer, "chat-2", BLINK_CHAT.format(version=1))
        assert ok.status == 200
        _ack(peer, ok, chats)
        chats.wait(lambda: any(c.call_id == "chat-2" for c in chats.started))
        chat = next(c for c in chats.started if c.call_id == "chat-2")
        chats.wait(lambda: chat.state is ChatSessionState.CONFIRMED)
        _end_by_phone(chats, peer, chat)
    finally:
        peer.close()


def test_a_re_offer_whose_handling_fails_is_refused_and_the_session_goes_on(
    chats: Chats, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug under pjsip's on_rx_offer2 (a ctypes callback) is logged once and
    sets no answer: pjsip refuses that re-INVITE 488 and the session stays as
    it was (RFC 3261 section 14.2), so the next re-INVITE is answered."""

    def bug(sessions: ChatSessions, chat: ChatSession, param: int) -> None:
        raise RuntimeError("a bug in the re-offer")

    peer = UdpSipPeer("blink")
    try:
        ok = _invite(chats, peer, "chat-bug", BLINK_CHAT.format(version=1))
        _ack(peer, ok, chats)
        chats.wait(lambda: any(c.call_id == "chat-bug" for c in chats.started))
        monkeypatch.setattr(ChatSessions, "_reanswer", bug)
        dialog = (ok.call_id, "blink", ok.require("to"))
        refused = _reinvite(chats, peer, dialog, 2, BLINK_CHAT.format(version=2))
        assert refused.status == 488
        monkeypatch.undo()
        again = _reinvite(chats, peer, dialog, 3, BLINK_CHAT.format(version=2))
        assert again.status == 200 and b"m=message 40002 TCP/MSRP" in again.body
        assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR] == [
            ("phone.sip.chat_session", "InviteCallbackTable.on_rx_offer2 failed")
        ]
        chat = next(c for c in chats.started if c.call_id == "chat-bug")
        _end_by_phone(chats, peer, chat)
    finally:
        peer.close()


def _reinvite(
    chats: Chats, peer: UdpSipPeer, dialog: tuple[str, str, str], cseq: int, body: str
) -> SipMessage:
    """A re-INVITE with `body` in `dialog` (Call-ID, the peer's tag, To); its
    final answer, ACKed (a non-2xx in its transaction, RFC 3261 section 17.1.1.3)."""
    call_id, from_tag, to = dialog
    branch = f"z9hG4bK{secrets.token_hex(8)}"
    peer.send(
        peer.request(
            "INVITE",
            chats.me,
            call_id=call_id,
            from_tag=from_tag,
            to=to,
            cseq=cseq,
            body=body.encode(),
            content_type="application/sdp",
            branch=branch,
        ),
        chats.target,
    )
    answer = peer.receive(chats.pump, match=lambda m: (m.status or 0) >= 200 and m.cseq[0] == cseq)
    ack = peer.request(
        "ACK",
        chats.me,
        call_id=call_id,
        from_tag=from_tag,
        to=to,
        cseq=cseq,
        branch=None if answer.status == 200 else branch,
    )
    peer.send(ack, chats.target)
    return answer


def _origin(answer: SipMessage) -> tuple[int, int]:
    """(session id, version) of the o= line of a message's SDP."""
    line = next(x for x in answer.body.decode().splitlines() if x.startswith("o="))
    fields = line[2:].split()
    return int(fields[1]), int(fields[2])


def test_each_changed_answer_of_a_chat_steps_the_sdp_version_by_one(chats: Chats) -> None:
    """RFC 3264 section 8: every SDP of a session keeps the o= session id, and
    its version goes up by one when the SDP changed, else stays. The phone
    offers actpass; the peer's re-offers are answered with active (only
    a=setup changed, which pjmedia's own comparison misses), active again (no
    change), then in msrps (the m-line changed)."""
    peer = UdpSipPeer("blink")
    try:
        identity = Identity(chats.me, lambda target: f"<{chats.me}>", None)
        chat = chats.sessions.offer(peer.uri, identity)
        invite = peer.receive(chats.pump, match=lambda m: m.method == "INVITE")
        session_id, version = _origin(invite)
        answer = BLINK_CHAT.format(version=1).replace("a=setup:actpass", "a=setup:passive")
        assert peer.last_from is not None
        peer.send(
            UdpSipPeer.response(
                invite,
                200,
                "OK",
                to_tag="v1",
                headers=(("Contact", f"<{peer.uri}>"),),
                body=answer.encode(),
                content_type="application/sdp",
            ),
            peer.last_from,
        )
        peer.receive(chats.pump, match=lambda m: m.method == "ACK")
        chats.wait(lambda: chat in chats.started)
        dialog = (invite.call_id, "v1", invite.require("from"))
        msrps = BLINK_CHAT.replace("TCP/MSRP", "TCP/TLS/MSRP").replace("msrp:", "msrps:")
        origins, setups = [], []
        for cseq, offer in enumerate((BLINK_CHAT, BLINK_CHAT, msrps), start=1):
            ok = _reinvite(chats, peer, dialog, cseq, offer.format(version=1 + cseq))
            assert ok.status == 200
            origins.append(_origin(ok))
            found = find_message(SessionDescription.parse(ok.body.decode()))
            assert found is not None
            setups.append(found[1].setup)
        assert setups == [SetupRole.ACTIVE] * 3  # actpass was offered: the answers changed
        assert origins == [
            (session_id, version + 1),  # a=setup changed
            (session_id, version + 1),  # the same SDP again
            (session_id, version + 2),  # msrps
        ]
        _end_by_phone(chats, peer, chat)
    finally:
        peer.close()


def test_broken_chat_offer_gets_488(chats: Chats) -> None:
    peer = UdpSipPeer("blink")
    try:
        broken = BLINK_CHAT.format(version=1).replace("a=path:msrp://", "a=path:http://")
        answer = _invite(chats, peer, "chat-3", broken)
        assert answer.status == 488
    finally:
        peer.close()


def test_pjsua_calls_still_work_while_chat_sessions_are_hooked(
    chats: Chats,
    account: Any,  # noqa: F811 (the fixture)
    pj_endpoint: Any,
    sip_transports: Any,
) -> None:
    # pjsua's own invite sessions go through the wrapped callback table untouched.
    started, ended = len(chats.started), len(chats.ended)
    answer_round_trip(account, pj_endpoint, sip_transports.udp_port)
    offer_round_trip(account, pj_endpoint)
    assert (len(chats.started), len(chats.ended)) == (started, ended)


def test_phone_offers_a_chat_only_session_with_digest(chats: Chats) -> None:
    peer = UdpSipPeer("blink")
    try:
        identity = Identity(chats.me, lambda target: f"<{chats.me}>", Credentials("me", "pw"))
        chat = chats.sessions.offer(peer.uri, identity)
        first = peer.receive(chats.pump, match=lambda m: m.method == "INVITE")
        offer = SessionDescription.parse(first.body.decode())
        assert [m.kind for m in offer.media] == ["message"]
        found = find_message(offer)
        assert found is not None and found[1].setup is SetupRole.ACTPASS
        assert peer.last_from is not None
        peer.send(
            UdpSipPeer.response(
                first,
                407,
                "Proxy Authentication Required",
                to_tag="c1",
                headers=(("Proxy-Authenticate", 'Digest realm="r", nonce="n1", qop="auth"'),),
            ),
            peer.last_from,
        )
        second = peer.receive(chats.pump, match=lambda m: m.method == "INVITE")
        authorization = second.require("proxy-authorization")
        assert 'username="me"' in authorization and 'nonce="n1"' in authorization
        answer = BLINK_CHAT.format(version=1).replace("a=setup:actpass", "a=setup:passive").encode()
        peer.send(
            UdpSipPeer.response(
                second,
                200,
                "OK",
                to_tag="c2",
                headers=(("Contact", f"<{peer.uri}>"),),
                body=answer,
                content_type="application/sdp",
            ),
            peer.last_from,
        )
        peer.receive(chats.pump, match=lambda m: m.method == "ACK")
        chats.wait(lambda: chat in chats.started)
        assert chat.message is not None
        assert chat.message.remote_path == ("msrp://127.0.0.1:2855/blinkses;tcp",)
        assert chat.message.we_connect and chat.call_id == second.call_id
        peer.send(
            peer.request(
                "BYE",
                chats.me,
                call_id=second.call_id,
                from_tag="c2",
                to=second.require("from"),
                cseq=1,
            ),
            chats.target,
        )
        assert peer.receive(chats.pump, match=lambda m: m.status is not None).status == 200
        chats.wait(lambda: chat in chats.ended)
    finally:
        peer.close()


class _Registered(pj.Account):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.codes: list[int] = []

    def onRegState(self, prm: Any) -> None:  # noqa: N802 (pjsua2 callback)
        self.codes.append(prm.code)


@pytest.mark.kamailio
def test_chat_only_session_through_kamailio(
    chats: Chats, make_kamailio: Any, sip_transports: Any
) -> None:
    """alice offers a chat to bob through Kamailio (407 digest, record-route); bob's
    registered contact is this process, whose hook answers the chat-only INVITE."""
    server = make_kamailio()
    config = pj.AccountConfig()
    config.idUri = server.uri("bob")
    config.regConfig.registrarUri = server.registrar_uri
    config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", "bob", 0, "bobpw"))
    bob = _Registered()
    bob.create(config)
    try:
        chats.wait(lambda: 200 in bob.codes, timeout=5.0)
        alice = Identity(
            server.uri("alice"),
            lambda target: f"<sip:alice@127.0.0.1:{sip_transports.udp_port}>",
            Credentials("alice", "alicepw"),
            (f"<sip:127.0.0.1:{server.sip_port};lr>",),
        )
        chat = chats.sessions.offer(server.uri("bob"), alice)
        chats.wait(lambda: chat in chats.started, timeout=5.0)
        answered = next(c for c in chats.started if c is not chat and c.call_id == chat.call_id)
        assert chat.message is not None and answered.message is not None
        assert chat.message.remote_path == answered.message.local_path
        assert answered.message.remote_path == chat.message.local_path
        assert chat.message.we_connect != answered.message.we_connect
        chats.sessions.end(chat)
        chats.wait(lambda: chat in chats.ended and answered in chats.ended, timeout=5.0)
    finally:
        bob.shutdown()
