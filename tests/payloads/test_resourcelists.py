"""Resource lists (RFC 4826 §3), with Blink's and OMA's layouts."""

from __future__ import annotations

import pytest

from phone.payloads import PayloadError, resourcelists
from phone.payloads.resourcelists import (
    AddressbookContact,
    DisplayName,
    Entry,
    EntryRef,
    Extension,
    External,
    ResourceList,
    ResourceLists,
)
from tests.payloads.sampledata import sample
from tests.payloads.xsd import assert_valid


def test_rfc4826_example() -> None:
    document = resourcelists.parse(sample("rfc4826-resource-lists.xml"))
    (friends,) = document.lists
    assert friends.name == "friends"
    bill, ref, close = friends.items
    assert bill == Entry("sip:bill@example.com", DisplayName("Bill Doe"))
    assert isinstance(ref, EntryRef) and ref.ref.startswith("resource-lists/users/sip:bill@")
    assert isinstance(close, ResourceList)
    assert close.display_name == DisplayName("Close Friends")
    assert [e.uri for e in friends.entries()] == [
        "sip:bill@example.com",
        "sip:joe@example.com",
        "sip:nancy@example.com",
    ]
    external = close.items[-1]
    assert isinstance(external, External) and external.display_name == DisplayName("Marketing")
    assert document.list("friends") is friends and document.list("nope") is None
    rebuilt = resourcelists.build(document)
    assert_valid(rebuilt)
    assert resourcelists.parse(rebuilt) == document


def test_blink_layout() -> None:
    document = resourcelists.parse(sample("blink-resource-lists.xml"))
    assert [item.name for item in document.lists] == [
        "oma_buddylist",
        "oma_grantedcontacts",
        "oma_blockedcontacts",
        "oma_allcontacts",
        "sipsimple_presence_rls",
        "sipsimple_addressbook",
    ]
    allcontacts = document.list("oma_allcontacts")
    assert allcontacts is not None
    assert all(isinstance(item, External) for item in allcontacts.items)
    book = document.list("sipsimple_addressbook")
    assert book is not None
    bob, carol, group = book.items
    assert isinstance(bob, AddressbookContact) and isinstance(carol, AddressbookContact)
    assert (bob.name, bob.uri) == ("Bob Builder", "sip:bob@office.example.test")
    assert (carol.name, carol.uri) == ("Carol", "sip:carol@example.test")
    assert isinstance(group, Extension) and b"Friends" in group.xml
    rebuilt = resourcelists.build(document)
    assert_valid(rebuilt)
    assert resourcelists.parse(rebuilt) == document


def test_built_document_is_valid() -> None:
    document = ResourceLists(
        lists=(
            ResourceList(
                name="buddies",
                display_name=DisplayName("Buddies", "en"),
                items=(
                    Entry("sip:bob@example.test", DisplayName("Bob")),
                    Entry("sip:carol@example.test"),
                    ResourceList(name="work", items=(Entry("tel:+15551234"),)),
                    EntryRef("resource-lists/users/sip:x@y/index/~~/resource-lists/list"),
                    External("http://xcap.example.test/root/resource-lists/users/sip:x@y/index"),
                ),
            ),
            ResourceList(name="empty"),
        )
    )
    body = resourcelists.build(document)
    assert_valid(body)
    assert resourcelists.parse(body) == document


RL = b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (RL + b"<list><entry/></list></resource-lists>", "uri"),
        (RL + b"<list><entry-ref/></list></resource-lists>", "ref"),
        (RL + b"<list><bogus/></list></resource-lists>", "unknown element"),
        (RL + b"<entry uri='x'/></resource-lists>", "unexpected"),
        (RL + b"<list>" * 20 + b"</list>" * 20 + b"</resource-lists>", "nested deeper"),
        (b'<resource-list xmlns="urn:ietf:params:xml:ns:resource-lists"/>', "root element"),
        (
            RL + b'<list><contact xmlns="urn:ag-projects:xml:ns:addressbook"/></list>'
            b"</resource-lists>",
            "id",
        ),
    ],
)
def test_malformed(document: bytes, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        resourcelists.parse(document)
