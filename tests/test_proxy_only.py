"""Accept only from the proxy: a scanner calling a registered phone's port directly
gets 403 and the phone never rings; calls through Kamailio, and direct-mode
phones, are unaffected."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from phone.sip.message import SipMessage
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.phones import PhoneFactory, account, has_call, phones, ring_then_reject
from tests.sip.udp_peer import UdpSipPeer

__all__ = ["phones"]

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


@pytest.fixture
def scanner() -> Iterator[UdpSipPeer]:
    peer = UdpSipPeer("scanner")
    yield peer
    peer.close()


def registered(state: dict[str, Any]) -> bool:
    return bool(state["registered"])


def send(
    peer: UdpSipPeer, method: str, target: str, port: int, to_tag: str | None = None
) -> SipMessage:
    """`method` straight to the phone's port (in a dialog with `to_tag`); the
    final response (a 1xx is skipped)."""
    body, content_type = (SDP, "application/sdp") if method == "INVITE" else (b"hi", "text/plain")
    peer.send(
        peer.request(
            method,
            target,
            call_id=secrets.token_hex(8),
            from_tag=secrets.token_hex(4),
            to=f"<{target}>" + (f";tag={to_tag}" if to_tag else ""),
            cseq=1,
            body=body,
            content_type=content_type,
        ),
        ("127.0.0.1", port),
    )
    return peer.receive(lambda: time.sleep(0.002), match=lambda m: (m.status or 0) >= 180)


def test_direct_requests_to_a_registered_phone_get_403(
    kamailio: Kamailio, phones: PhoneFactory, scanner: UdpSipPeer
) -> None:
    port = free_port()
    alice = phones.start("alice", {**account(kamailio, "alice"), "port": port}, [])
    bob = phones.start("bob", account(kamailio, "bob"), [("Alice", kamailio.uri("alice"))])
    for phone in (alice, bob):
        phone.wait_for(registered, what="registered")

    target = f"sip:alice@127.0.0.1:{port}"
    methods = ("INVITE", "INVITE", "MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER")
    for method in methods:
        assert send(scanner, method, target, port).status == 403, method
    # A request in a dialog passes the guard (a focus's NOTIFYs come straight
    # from it), but reaches only a dialog the phone made: pjsip answers 481.
    for method in ("NOTIFY", "REFER"):
        assert send(scanner, method, target, port, to_tag="guessed").status == 481, method
    state = alice.state()
    assert state["calls"] == []
    assert state["refused"]["not_from_proxy"] == len(methods)

    # Through Kamailio (the registrar, on the same host) the phone still rings.
    ring_then_reject(bob, alice)
    alice.stop()
    bob.stop()
    log = alice.log_path.read_text()
    refusals = [line for line in log.splitlines() if "refusing" in line]
    assert len(refusals) == 1, refusals  # once per source, not per request
    assert f"refusing INVITE from 127.0.0.1:{scanner.port} with 403" in refusals[0]
    # The burst's end is logged with its count (at the latest when the phone stops).
    assert f"requests from 127.0.0.1:{scanner.port} over: {len(methods)} refused" in log


def test_the_setting_turns_it_off(
    kamailio: Kamailio, phones: PhoneFactory, scanner: UdpSipPeer
) -> None:
    port = free_port()
    alice = phones.start(
        "alice",
        {**account(kamailio, "alice"), "port": port},
        [],
        calls={"accept_only_from_proxy": False},
    )
    alice.wait_for(registered, what="registered")
    assert send(scanner, "INVITE", f"sip:alice@127.0.0.1:{port}", port).status == 180
    alice.wait_for(has_call("ringing"), what="alice rings for the direct call")


def test_a_direct_mode_phone_accepts_anyone(phones: PhoneFactory, scanner: UdpSipPeer) -> None:
    alice, uri = phones.direct("alice")
    port = int(uri.rsplit(":", 1)[1])
    assert send(scanner, "INVITE", uri, port).status == 180
    alice.wait_for(has_call("ringing"), what="alice rings")
