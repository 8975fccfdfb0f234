"""RFC 3903 PUBLISH against Kamailio's presence server, watched by a real subscription."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from phone.payloads import pidf
from phone.sip.publication import Publication, PublicationState
from phone.sip.rawsip import RawSip
from phone.sip.subscription import Notification
from tests.peers.kamailio import Kamailio
from tests.sip.kamailio_client import KamailioClient

pytestmark = [pytest.mark.kamailio, pytest.mark.slow]


class Peer(KamailioClient):
    """alice watching bob's presence, and bob publishing it, in this process."""

    def __init__(self, raw: RawSip, ep: Any, port: int, server: Kamailio) -> None:
        super().__init__(ep, raw, port, server)
        self.seen: list[Notification] = []

    def publication(self, user: str, expires: int = 600) -> Publication:
        return Publication(
            self.raw, self.identity(user), self.loop, "presence", pidf.CONTENT_TYPE, expires
        )

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


@pytest.fixture
def peer(
    raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any, make_kamailio: Any
) -> Iterator[Peer]:
    server = make_kamailio()
    server.allow_watchers("bob")
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
