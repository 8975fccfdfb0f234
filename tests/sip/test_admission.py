"""Call admission: the account of pjmedia's sockets, and the INVITE hook that keeps to it."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from phone.sip.admission import (
    KEYS_PER_LINE,
    MAX_LINES,
    RETRY_AFTER_LIVE_S,
    CallAdmission,
    MediaSlots,
    audio_lines,
)
from phone.sip.message import SipMessage
from phone.sip.rawsip import RawSip
from tests.call_flood import sdp_offer

from .udp_peer import UdpSipPeer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def invite(body: bytes, content_type: str = "application/sdp") -> SipMessage:
    head = f"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nContent-Type: {content_type}\r\n"
    return SipMessage.parse(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)


def test_audio_lines_counts_what_pjsua_opens_sockets_for() -> None:
    assert audio_lines(invite(b"")) == 1  # no offer: pjsua offers one line on answer
    assert audio_lines(invite(sdp_offer(4000, 1))) == 1
    assert audio_lines(invite(sdp_offer(4000, 3))) == 3
    assert audio_lines(invite(sdp_offer(4000, 40))) == MAX_LINES
    rejected_and_video = b"v=0\r\nm=audio 0 RTP/AVP 0\r\nm=video 5000 RTP/AVP 96\r\n"
    assert audio_lines(invite(rejected_and_video)) == 0
    multipart = (
        b"--b\r\nContent-Type: application/sdp\r\n\r\n"
        + sdp_offer(4000, 2)
        + b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
    )
    assert audio_lines(invite(multipart, "multipart/mixed;boundary=b")) == 2


def call_made(slots: MediaSlots, call_id: str, keys: int) -> None:
    """An INVITE held its keys and pjsua made a call of it."""
    slots.hold(call_id, keys)
    slots.claim(call_id)


def test_slots_are_held_by_live_calls_then_for_the_free_delay() -> None:
    clock = Clock()
    slots = MediaSlots(capacity=6, free_delay=0.5, clock=clock)
    call_made(slots, "a", 2)
    call_made(slots, "b", 4)
    assert slots.in_use() == 6 and not slots.room_for(2)
    slots.release("a")
    assert slots.in_use() == 6 and not slots.room_for(2)  # closed, not yet free
    assert slots.retry_after(2) == 1
    clock.now += 0.5
    assert slots.in_use() == 4 and slots.room_for(2)
    assert not slots.room_for(4)
    assert slots.retry_after(4) == RETRY_AFTER_LIVE_S  # only a live call can make room


def test_a_live_call_is_counted_once_when_its_offer_grows() -> None:
    slots = MediaSlots(capacity=6, clock=Clock())
    slots.hold("a", 4)
    assert slots.room_for(6, "a") and not slots.room_for(6)
    slots.hold("a", 6)
    slots.hold("a", 2)  # a smaller re-offer keeps the sockets pjsua has opened
    assert slots.in_use() == 6


def test_an_invite_pjsua_made_no_call_of_is_settled() -> None:
    clock = Clock()
    slots = MediaSlots(capacity=8, free_delay=0.5, clock=clock)
    call_made(slots, "made", 2)
    slots.hold("refused by pjsua", 2)
    slots.settle("made")
    slots.settle("refused by pjsua")
    assert slots.holds("made") and not slots.holds("refused by pjsua")
    clock.now += 0.5
    assert slots.in_use() == 2
    slots.release("made")
    slots.release("made")  # the call's end, then the phone's stop
    clock.now += 0.5
    assert slots.in_use() == 0


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The hook's loop; the test pumps pjsua itself, so the loop never runs."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def send_invite(
    peer: UdpSipPeer, pj_endpoint: Any, port: int, lines: int, to_tag: str | None = None
) -> SipMessage:
    ruri = f"sip:bob@127.0.0.1:{port}"
    peer.send(
        peer.request(
            "INVITE",
            ruri,
            call_id=secrets.token_hex(8),
            from_tag="f",
            to=f"<{ruri}>" + (f";tag={to_tag}" if to_tag else ""),
            cseq=1,
            body=sdp_offer(4000, lines),
            content_type="application/sdp",
        ),
        ("127.0.0.1", port),
    )
    return peer.receive(lambda: pj_endpoint.libHandleEvents(5), match=lambda m: not m.is_request)


def test_invites_beyond_the_room_get_486_with_retry_after_logged_once(
    raw_sip: RawSip,
    loop: asyncio.AbstractEventLoop,
    pj_endpoint: Any,
    sip_transports: Any,
    caplog: Any,
) -> None:
    caplog.set_level(logging.INFO, logger="phone.sip.admission")
    admission = CallAdmission(raw_sip, MediaSlots(capacity=2 * KEYS_PER_LINE), loop)
    peer = UdpSipPeer("mallory")
    try:
        for _ in range(2):
            answer = send_invite(peer, pj_endpoint, sip_transports.udp_port, lines=3)
            assert answer.status == 486
            assert answer.header("retry-after") == str(RETRY_AFTER_LIVE_S)
        # Not a dialog of a call we hold: pjsip's own answer, not ours.
        in_dialog = send_invite(peer, pj_endpoint, sip_transports.udp_port, 3, to_tag="x")
        assert in_dialog.status == 481
    finally:
        peer.close()
        admission.close()  # logs the burst that is not over yet
    assert admission.refused == 2
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("too many calls at once")]) == 1
    (over,) = [m for m in messages if m.startswith("call burst over")]
    assert over.startswith("call burst over: calls refused: 2 in ")
