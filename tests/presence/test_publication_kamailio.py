"""RFC 3903 PUBLISH against Kamailio's presence server, watched by a real subscription."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from phone.payloads import pidf
from phone.sip.digest import Credentials
from phone.sip.identity import Identity
from phone.sip.publication import Publication, PublicationState
from phone.sip.rawsip import RawSip
from phone.sip.subscription import Notification, Subscriber
from tests.peers.kamailio import Kamailio
from tests.sip.conftest import raw_sip, sip_transports

__all__ = ["raw_sip", "sip_transports"]

pytestmark = [pytest.mark.kamailio, pytest.mark.slow]


class Peer:
    """alice watching bob's presence, and bob publishing it, in this process."""

    def __init__(self, raw: RawSip, ep: Any, port: int, server: Kamailio) -> None:
        self.raw, self.ep, self.port, self.server = raw, ep, port, server
        self.loop = asyncio.new_event_loop()
        self.subscriber = Subscriber(raw, self.identity("alice"), self.loop)
        self.seen: list[Notification] = []

    def identity(self, user: str) -> Identity:
        contact = f"<sip:{user}@127.0.0.1:{self.port}>"
        return Identity(
            aor=self.server.uri(user),
            contact=lambda target: contact,
            credentials=Credentials(user, self.server.users[user]),
            route=(f"<sip:127.0.0.1:{self.server.sip_port};lr>",),
        )

    def publication(self, user: str, expires: int = 600) -> Publication:
        return Publication(
            self.raw, self.identity(user), self.loop, "presence", pidf.CONTENT_TYPE, expires
        )

    def pump(self) -> None:
        self.ep.libHandleEvents(2)
        self.loop.run_until_complete(asyncio.sleep(0.001))

    def wait(self, condition: Callable[[], bool], timeout: float = 8.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.pump()

    def notes(self) -> list[str] | None:
        """The notes of bob's tuples in the latest NOTIFY with a document, or None."""
        docs = [n.document for n in self.seen if n.body]
        empty = [n for n in self.seen if not n.body]
        if empty and (not docs or self.seen.index(empty[-1]) > self._last_body_index()):
            return []
        if not docs:
            return None
        return [n.text for t in docs[-1].tuples for n in t.notes]

    def _last_body_index(self) -> int:
        return max(i for i, n in enumerate(self.seen) if n.body)

    def close(self) -> None:
        async def closing() -> None:
            task = asyncio.ensure_future(self.subscriber.close(timeout=2.0))
            while not task.done():
                self.ep.libHandleEvents(2)
                await asyncio.sleep(0.002)

        self.loop.run_until_complete(closing())
        self.loop.close()


@pytest.fixture
def peer(
    raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any, make_kamailio: Any
) -> Iterator[Peer]:
    server = make_kamailio()
    server.xcap_put("bob", "pres-rules", server.xcap_example("allow-local-pres-rules"))
    p = Peer(raw_sip, pj_endpoint, sip_transports.udp_port, server)
    p.subscriber.subscribe("presence", server.uri("bob"), p.seen.append)
    p.wait(lambda: bool(p.seen), what="the first NOTIFY")
    yield p
    p.close()


def body(note: str) -> bytes:
    return pidf.build_user_presence("sip:bob@example.test", pidf.BasicStatus.OPEN, note=note)


def test_publish_then_modify_replaces_the_state(peer: Peer) -> None:
    publication = peer.publication("bob")
    publication.publish(body("one"))
    peer.wait(lambda: peer.notes() == ["one"], what="note one")
    first_etag = publication.etag
    assert publication.state is PublicationState.PUBLISHED and first_etag
    publication.publish(body("two"))
    # A modify (SIP-If-Match) replaces the one publication: one tuple, never two.
    peer.wait(lambda: peer.notes() == ["two"], what="note two")
    assert publication.state is PublicationState.PUBLISHED


def test_unknown_entity_tag_412_publishes_fresh(peer: Peer) -> None:
    publication = peer.publication("bob")
    publication.publish(body("one"))
    peer.wait(lambda: publication.state is PublicationState.PUBLISHED, what="published")
    publication.etag = "not-an-etag-kamailio-gave"
    publication.publish(body("after 412"))
    peer.wait(lambda: "after 412" in (peer.notes() or []), what="the fresh publication")
    assert publication.etag not in (None, "not-an-etag-kamailio-gave")


def test_remove_withdraws_the_state(peer: Peer) -> None:
    publication = peer.publication("bob")
    publication.publish(body("here"))
    peer.wait(lambda: peer.notes() == ["here"], what="published")
    publication.remove()
    peer.wait(lambda: publication.state is PublicationState.REMOVED, what="removed")
    peer.wait(lambda: peer.notes() == [], what="the watcher told the state is gone")
    assert publication.etag is None
