"""RFC 3903 publisher behaviour against a raw UDP presence server: exact requests, exact answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from phone.sip.identity import Identity
from phone.sip.message import SipMessage
from phone.sip.publication import Publication, PublicationState
from phone.sip.rawsip import RawSip
from tests.sip.udp_peer import UdpSipPeer


class Server:
    def __init__(self, raw: RawSip, ep: Any) -> None:
        self.ep = ep
        self.loop = asyncio.new_event_loop()
        self.peer = UdpSipPeer("presence")
        aor = "sip:bob@example.test"
        route = (f"<sip:127.0.0.1:{self.peer.port};lr>",)
        identity = Identity(aor, lambda target: "<sip:bob@127.0.0.1>", route=route)
        self.publication = Publication(raw, identity, self.loop, "presence", "application/pidf+xml")

    def pump(self) -> None:
        self.ep.libHandleEvents(2)
        self.loop.run_until_complete(asyncio.sleep(0))

    def receive(self) -> SipMessage:
        return self.peer.receive(self.pump, 3.0, match=lambda m: m.method == "PUBLISH")

    def answer(
        self, request: SipMessage, code: int, reason: str, *headers: tuple[str, str]
    ) -> None:
        assert self.peer.last_from is not None
        self.peer.send(
            self.peer.response(request, code, reason, headers=headers), self.peer.last_from
        )

    def wait(self, condition: Any) -> None:
        deadline = self.loop.time() + 3.0
        while not condition():
            assert self.loop.time() < deadline, "timed out"
            self.pump()


@pytest.fixture
def server(raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any) -> Iterator[Server]:
    s = Server(raw_sip, pj_endpoint)
    yield s
    s.peer.close()
    s.loop.close()


def test_423_takes_min_expires_then_modify_and_remove_carry_the_etag(server: Server) -> None:
    publication = server.publication
    publication.publish(b"<one/>")
    first = server.receive()
    assert first.header("sip-if-match") is None and first.body == b"<one/>"
    assert first.header("expires") == "600"
    server.answer(first, 423, "Interval Too Brief", ("Min-Expires", "900"))
    again = server.receive()
    assert again.header("expires") == "900" and again.body == b"<one/>"
    server.answer(again, 200, "OK", ("SIP-ETag", "e1"), ("Expires", "900"))
    server.wait(lambda: publication.state is PublicationState.PUBLISHED)

    publication.publish(b"<two/>")
    modify = server.receive()
    assert modify.header("sip-if-match") == "e1" and modify.body == b"<two/>"
    server.answer(modify, 200, "OK", ("SIP-ETag", "e2"), ("Expires", "900"))
    server.wait(lambda: publication.etag == "e2")

    publication.remove()
    remove = server.receive()
    assert remove.header("sip-if-match") == "e2" and remove.header("expires") == "0"
    assert not remove.body
    server.answer(remove, 200, "OK", ("SIP-ETag", "e2"), ("Expires", "0"))
    server.wait(lambda: publication.state is PublicationState.REMOVED)


def test_a_change_during_a_transaction_waits_for_its_answer(server: Server) -> None:
    publication = server.publication
    publication.publish(b"<one/>")
    first = server.receive()
    publication.publish(b"<two/>")  # no entity tag yet: must not go out as a second initial
    server.answer(first, 200, "OK", ("SIP-ETag", "e1"), ("Expires", "600"))
    modify = server.receive()
    assert modify.header("sip-if-match") == "e1" and modify.body == b"<two/>"


def test_server_error_retries_fresh(server: Server) -> None:
    publication = server.publication
    publication.publish(b"<one/>")
    server.answer(server.receive(), 200, "OK", ("SIP-ETag", "e1"), ("Expires", "600"))
    server.wait(lambda: publication.etag == "e1")
    publication.publish(b"<two/>")
    server.answer(server.receive(), 503, "Service Unavailable", ("Retry-After", "1"))
    retry = server.receive()  # about a second later, fresh
    assert retry.header("sip-if-match") is None and retry.body == b"<two/>"


def test_refresh_before_expiry_has_no_body_and_the_etag(server: Server) -> None:
    publication = server.publication
    publication.publish(b"<one/>")
    server.answer(server.receive(), 200, "OK", ("SIP-ETag", "e1"), ("Expires", "6"))
    started = server.loop.time()
    refresh = server.receive()  # due at max(1 s, min(90 %, expiry - 5 s)) = 1 s
    assert 0.8 < server.loop.time() - started < 2.5
    assert refresh.header("sip-if-match") == "e1" and refresh.header("expires") == "600"
    assert not refresh.body and refresh.header("content-type") is None
    server.answer(refresh, 412, "Conditional Request Failed")
    fresh = server.receive()  # the server forgot us: publish the state again, fresh
    assert fresh.header("sip-if-match") is None and fresh.body == b"<one/>"
