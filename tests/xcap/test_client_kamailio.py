"""XcapClient against a real XCAP server: Kamailio's xcap_server (tests/peers/kamailio.py).

Kamailio's quirks are met as they are: it wants a quoted `"*"` wildcard,
answers 500 to malformed XML, appends on a node PUT, sends no ETag with 304,
and offers Basic and Digest in one WWW-Authenticate header.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from phone.payloads import presrules, resourcelists
from phone.payloads.presrules import PresRules, SubHandling
from phone.payloads.resourcelists import DisplayName, Entry, ResourceList, ResourceLists
from phone.xcap import applications
from phone.xcap.client import ELEMENT_TYPE, XcapClient
from phone.xcap.errors import (
    XcapAuthError,
    XcapNotFound,
    XcapPreconditionFailed,
    XcapStatusError,
)
from phone.xcap.selector import element
from tests.peers.kamailio import Kamailio

pytestmark = pytest.mark.kamailio

T = TypeVar("T")

FRIENDS = ResourceLists(
    lists=(
        ResourceList(
            name="friends",
            items=(
                Entry("sip:bob@example.test", DisplayName("Bob")),
                Entry("sip:carol@example.test", DisplayName("Carol")),
            ),
        ),
    )
)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture
def server(make_kamailio: Callable[..., Kamailio]) -> Kamailio:
    return make_kamailio()


def client_for(server: Kamailio, user: str = "alice", **kwargs: Any) -> XcapClient:
    kwargs.setdefault("username", user)
    kwargs.setdefault("password", server.users[user])
    return XcapClient(server.xcap_root, server.uri(user), **kwargs)


def test_capabilities_and_directory(server: Kamailio) -> None:
    client = client_for(server)
    caps = run(client.capabilities())
    assert caps.supports("resource-lists") and caps.supports("pres-rules")
    assert caps.supports("org.openmobilealliance.xcap-directory")
    server.xcap_put("alice", "resource-lists", resourcelists.build(FRIENDS))
    directory = run(client.directory())
    assert directory is not None
    folder = directory.folder("resource-lists")
    assert folder is not None and [e.uri.endswith("/index") for e in folder.entries] == [True]


def test_put_get_refresh_and_delete_a_document(server: Kamailio) -> None:
    client = client_for(server)

    async def scenario() -> None:
        uri = client.document("resource-lists")
        with pytest.raises(XcapNotFound):
            await client.get(uri)
        etag = await client.put(
            uri, resourcelists.build(FRIENDS), resourcelists.CONTENT_TYPE, etag=None
        )
        assert etag
        first = await client.fetch(applications.RESOURCE_LISTS)
        assert first.value == FRIENDS and first.resource.etag == etag
        # 304 without an ETag: the cached document comes back, with its ETag.
        assert await client.fetch(applications.RESOURCE_LISTS, cached=first) is first
        changed = server.xcap_put("alice", "resource-lists", resourcelists.build(ResourceLists()))
        refreshed = await client.fetch(applications.RESOURCE_LISTS, cached=first)
        assert refreshed.value == ResourceLists() and refreshed.resource.etag == changed
        with pytest.raises(XcapPreconditionFailed):
            await client.delete(uri, etag=etag)
        await client.delete(uri, etag=changed)
        with pytest.raises(XcapNotFound):
            await client.get(uri)

    run(scenario())


def test_elements_and_attributes(server: Kamailio) -> None:
    client = client_for(server)
    server.xcap_put("alice", "resource-lists", resourcelists.build(FRIENDS))
    document = client.document("resource-lists")
    friends = element("resource-lists", 'list[@name="friends"]')
    carol = document.at(friends.child('entry[@uri="sip:carol@example.test"]'))

    async def scenario() -> None:
        got = await client.get(carol)
        assert b"Carol" in got.body
        bob_uri = document.at(friends.child("entry[1]").attribute("uri"))
        assert (await client.get(bob_uri)).body == b"sip:bob@example.test"
        dave = document.at(friends.child('entry[@uri="sip:dave@example.test"]'))
        await client.put(dave, b'<entry uri="sip:dave@example.test"/>', ELEMENT_TYPE, etag="*")
        await client.delete(carol, etag="*")
        with pytest.raises(XcapNotFound):
            await client.get(carol)

    run(scenario())
    after = resourcelists.parse(run(client.get(document)).body)
    assert [e.uri for e in after.lists[0].entries()] == [
        "sip:bob@example.test",
        "sip:dave@example.test",
    ]


def test_a_race_is_answered_by_reading_again_and_reapplying(server: Kamailio) -> None:
    """Another client writes between our read and our write: 412, re-read, re-apply."""
    client = client_for(server)
    server.xcap_put("alice", "resource-lists", resourcelists.build(FRIENDS))
    seen: list[ResourceLists | None] = []

    def add_dave(document: ResourceLists | None) -> ResourceLists:
        seen.append(document)
        assert document is not None
        if len(seen) == 1:  # the other writer strikes after our read
            other = ResourceLists(lists=(ResourceList(name="work", items=()), *document.lists))
            server.xcap_put("alice", "resource-lists", resourcelists.build(other))
        friends = document.lists[-1]
        grown = ResourceList(
            friends.name, friends.display_name, (*friends.items, Entry("sip:dave@example.test"))
        )
        return ResourceLists(lists=(*document.lists[:-1], grown))

    written = run(client.modify(applications.RESOURCE_LISTS, add_dave))
    assert len(seen) == 2
    assert [item.name for item in written.value.lists] == ["work", "friends"]
    stored = resourcelists.parse(run(client.get(client.document("resource-lists"))).body)
    assert stored == written.value
    assert "sip:dave@example.test" in [e.uri for e in stored.lists[1].entries()]


def test_pres_rules_decision_written_with_if_match(server: Kamailio) -> None:
    client = client_for(server)

    def allow_carol(document: PresRules | None) -> PresRules:
        return presrules.decide(
            document or PresRules(), "sip:carol@example.test", SubHandling.ALLOW
        )

    first = run(client.modify(applications.PRES_RULES, allow_carol))
    assert first.value.sub_handling("sip:carol@example.test") is SubHandling.ALLOW
    blocked = run(
        client.modify(
            applications.PRES_RULES,
            lambda d: presrules.decide(
                d or PresRules(), "sip:carol@example.test", SubHandling.BLOCK
            ),
        )
    )
    assert blocked.resource.etag != first.resource.etag
    stored = presrules.parse(run(client.get(client.document("pres-rules"))).body)
    assert stored.sub_handling("sip:carol@example.test") is SubHandling.BLOCK


def test_malformed_xml_gets_kamailios_500(
    server: Kamailio, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(server)
    uri = client.document("resource-lists")
    with (
        caplog.at_level(logging.WARNING, logger="phone.xcap"),
        pytest.raises(XcapStatusError) as failure,
    ):
        run(client.put(uri, b"<resource-lists", resourcelists.CONTENT_TYPE, etag=None))
    assert failure.value.status == 500
    assert len(caplog.records) == 1 and "500" in caplog.records[0].getMessage()


@pytest.mark.parametrize("username", ["alice", "sip:alice@example.test"])
def test_digest_with_a_bare_user_or_the_aor(server: Kamailio, username: str) -> None:
    client = client_for(server, username=username)
    assert run(client.capabilities()).auids


def test_wrong_password_and_someone_elses_document(
    server: Kamailio, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = client_for(server, password="wrong")
    with (
        caplog.at_level(logging.WARNING, logger="phone.xcap"),
        pytest.raises(XcapAuthError) as failure,
    ):
        run(wrong.get(wrong.document("resource-lists")))
    assert failure.value.status == 401
    assert len(caplog.records) == 1
    bob_as_alice = XcapClient(
        server.xcap_root, server.uri("bob"), username="alice", password="alicepw"
    )
    with pytest.raises(XcapAuthError) as failure:
        run(bob_as_alice.get(bob_as_alice.document("resource-lists")))
    assert failure.value.status == 403


def test_wildcard_precondition_is_sent_as_kamailio_takes_it(server: Kamailio) -> None:
    """RFC 7232's bare `If-Match: *` gets 412 from Kamailio; the client retries it
    quoted once and keeps doing so, and `If-None-Match: *` still refuses to overwrite."""
    client = client_for(server)
    uri = client.document("resource-lists")
    server.xcap_put("alice", "resource-lists", resourcelists.build(ResourceLists()))
    for _ in range(2):
        assert run(
            client.put(uri, resourcelists.build(FRIENDS), resourcelists.CONTENT_TYPE, etag="*")
        )
    assert resourcelists.parse(run(client.get(uri)).body) == FRIENDS


def test_a_node_put_on_an_existing_element_appends(server: Kamailio) -> None:
    """Kamailio's node PUT removes the element and appends the new one at the end
    of its parent (RFC 4825 §8.2.4 replaces it in place), so order is lost: the
    client changes documents whole (`update`), which every server gets right."""
    client = client_for(server)
    server.xcap_put("alice", "resource-lists", resourcelists.build(FRIENDS))
    document = client.document("resource-lists")
    bob = document.at(
        element("resource-lists", 'list[@name="friends"]', 'entry[@uri="sip:bob@example.test"]')
    )
    renamed = b'<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:bob@example.test"><display-name>Robert</display-name></entry>'
    run(client.put(bob, renamed, ELEMENT_TYPE, etag="*"))
    entries = list(resourcelists.parse(run(client.get(document)).body).lists[0].entries())
    assert [(e.uri, e.display_name) for e in entries] == [
        ("sip:carol@example.test", DisplayName("Carol")),
        ("sip:bob@example.test", DisplayName("Robert")),
    ]
