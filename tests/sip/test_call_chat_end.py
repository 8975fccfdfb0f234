"""Ending a call's chat (`SipCall.end_chat`): the re-INVITE with the message
line at port 0, sent again when the peer answers 491 Request Pending because
it crossed a re-INVITE of the peer's (RFC 3261 section 14.1); pjsua itself
gives up on a 491. The peer is a raw UDP one that calls the phone."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from phone.calls import CallState
from phone.sip.account import SipAccount
from phone.sip.admission import MediaSlots
from phone.sip.call import SipCall, glare_wait
from phone.sip.message import SipMessage
from phone.sip.message_stream import CallChat
from phone.sip.sdp import SessionDescription, local_msrp_path
from tests.conftest import SipTransports
from tests.peers.ports import LISTEN_IP
from tests.sip.stack import direct_account
from tests.sip.test_callback_guard import CoreWithBugs
from tests.sip.test_message_stream import _peer_sdp, few_codecs

from .udp_peer import UdpSipPeer

__all__ = ["few_codecs"]


class Phone:
    """The phone's account, answering every call with chat, pumped inside an
    asyncio loop as the phone runs it (so its timers fire)."""

    def __init__(self, ep: Any, transports: SipTransports) -> None:
        self.ep = ep
        self.loop = asyncio.new_event_loop()
        self.core = CoreWithBugs()
        config = direct_account("glare", transports.udp_port)
        self.uri = config.uri
        self.target = (LISTEN_IP, transports.udp_port)
        self.account = SipAccount(
            config,
            transport_id=transports.ids[0],
            local_address=LISTEN_IP,
            events=self.core,
            media_slots=MediaSlots(),
            on_recovered=lambda: None,
        )
        self.account.call_chat = CallChat(
            lambda protocol: (local_msrp_path(LISTEN_IP, 40003, protocol),)
        )
        self.account.start()

    def pump(self) -> None:
        async def once() -> None:
            self.ep.libHandleEvents(5)
            await asyncio.sleep(0.001)

        self.loop.run_until_complete(once())

    def in_loop(self, action: Any) -> Any:
        async def run() -> Any:
            return action()

        return self.loop.run_until_complete(run())


@pytest.fixture
def phone(pj_endpoint: Any, sip_transports: SipTransports, few_codecs: None) -> Iterator[Phone]:
    phone = Phone(pj_endpoint, sip_transports)
    yield phone
    phone.account.release()
    phone.loop.close()


def _answer(offer: SipMessage, rtp_port: int) -> bytes:
    """Our answer to the phone's re-offer: PCMU, and the message line at port 0 as offered."""
    media = SessionDescription.parse(offer.body.decode()).media
    assert [(m.kind, m.port == 0) for m in media] == [("audio", False), ("message", True)]
    return (
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=peer\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        "m=message 0 TCP/MSRP *\r\n"
    ).encode()


def test_a_chat_end_answered_491_is_sent_again(
    phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    """The peer placed the call and answers the phone's port-0 re-INVITE 491
    once: the phone sends it again (within 2 s: the peer owns the Call-ID), the
    peer accepts it, the chat is over and the audio call goes on."""
    caplog.set_level(logging.INFO, "phone.sip.call")
    peer = UdpSipPeer("bob")
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    try:
        peer.send(
            peer.request(
                "INVITE",
                phone.uri,
                call_id=f"glare-{secrets.token_hex(4)}",
                from_tag="bobtag",
                to=f"<{phone.uri}>",
                cseq=1,
                body=_peer_sdp(rtp.getsockname()[1], "actpass"),
                content_type="application/sdp",
            ),
            phone.target,
        )
        ok = peer.receive(phone.pump, match=lambda m: m.status == 200)
        dialog = {"call_id": ok.call_id, "from_tag": "bobtag", "to": ok.require("to")}
        peer.send(peer.request("ACK", phone.uri, cseq=1, **dialog), phone.target)  # type: ignore[arg-type]
        call: SipCall = phone.core.incoming[-1]
        stream = call.message_stream
        assert stream is not None
        while call.info.state is not CallState.CONFIRMED or stream.session is None:
            phone.pump()

        assert phone.in_loop(call.end_chat) is True
        first = peer.receive(phone.pump, match=lambda m: m.method == "INVITE")
        _answer(first, rtp.getsockname()[1])  # its message line is at port 0
        assert peer.last_from is not None
        peer.send(UdpSipPeer.response(first, 491, "Request Pending"), peer.last_from)

        again = peer.receive(phone.pump, timeout=5.0, match=lambda m: m.method == "INVITE")
        assert again.cseq[0] > first.cseq[0]
        peer.send(
            UdpSipPeer.response(
                again,
                200,
                "OK",
                headers=(("Contact", f"<{peer.uri}>"),),
                body=_answer(again, rtp.getsockname()[1]),
                content_type="application/sdp",
            ),
            peer.last_from,
        )
        peer.receive(phone.pump, match=lambda m: m.method == "ACK" and m.cseq[0] == again.cseq[0])
        assert stream.ended and call.info.state is CallState.CONFIRMED
        assert "chat end crossed the peer's re-INVITE (491), sent again in" in caplog.text

        phone.in_loop(call.end)
        bye = peer.receive(phone.pump, match=lambda m: m.method == "BYE")
        peer.send(UdpSipPeer.response(bye, 200, "OK"), peer.last_from)
        while phone.account.calls:
            phone.pump()
    finally:
        rtp.close()
        peer.close()


def test_the_wait_after_a_491_is_the_rfcs() -> None:
    """RFC 3261 section 14.1: 2.1-4 s for the Call-ID's owner, 0-2 s for the
    other, in units of 10 ms."""
    for owns, low, high in ((True, 2.1, 4.0), (False, 0.0, 2.0)):
        waits = {glare_wait(owns) for _ in range(500)}
        assert all(low <= wait <= high for wait in waits)
        assert all(abs(wait * 100 - round(wait * 100)) < 1e-9 for wait in waits)
        assert len(waits) > 50  # random, not one fixed value
