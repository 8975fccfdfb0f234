"""The contacts of a resource-lists document, in Blink's, OMA's and the RFC's layouts."""

from __future__ import annotations

from phone.payloads import resourcelists
from phone.payloads.resourcelists import (
    DisplayName,
    Entry,
    EntryRef,
    External,
    ResourceList,
    ResourceLists,
)
from phone.xcap.contacts import Contact, ListContacts, list_contacts
from phone.xcap.selector import DocumentSelector, XcapUri, element
from tests.payloads.sampledata import sample

ROOT = "http://xcap.example.test/xcap-root"
ALICE = DocumentSelector("resource-lists", "sip:alice@example.test")


def contacts(document: ResourceLists, name: str | None) -> ListContacts | None:
    return list_contacts(document, name, root=ROOT, here=ALICE)


def test_blink_layout() -> None:
    document = resourcelists.parse(sample("blink-resource-lists.xml"))
    buddies = contacts(document, "oma_buddylist")
    assert buddies == ListContacts((Contact("sip:bob@example.test", "Bob"),))
    everyone = contacts(document, "oma_allcontacts")
    assert everyone is not None and everyone.elsewhere == ()
    assert [c.uri for c in everyone.contacts] == [
        "sip:bob@example.test",
        "sip:carol@example.test",
        "sip:mallory@example.test",
    ]
    book = contacts(document, "sipsimple_addressbook")
    assert book == ListContacts(
        (
            Contact("sip:bob@office.example.test", "Bob Builder"),
            Contact("sip:carol@example.test", "Carol"),
        )
    )
    assert contacts(document, "missing") is None


def test_rfc4826_example_points_elsewhere() -> None:
    document = resourcelists.parse(sample("rfc4826-resource-lists.xml"))
    found = contacts(document, "friends")
    assert found is not None
    assert found.contacts == (
        Contact("sip:bill@example.com", "Bill Doe"),
        Contact("sip:joe@example.com", "Joe Smith"),
        Contact("sip:nancy@example.com", "Nancy Gross"),
    )
    # An entry in bill's document and a list on another server.
    assert len(found.elsewhere) == 2


def test_references_into_the_same_document() -> None:
    friends = element("resource-lists", 'list[@name="friends"]')
    carol = XcapUri(ALICE, friends.child('entry[@uri="sip:carol@example.test"]'))
    second = XcapUri(ALICE, friends.child("entry[2]"))
    document = ResourceLists(
        (
            ResourceList(
                "friends",
                items=(
                    Entry("sip:bob@example.test"),
                    Entry("sip:carol@example.test", DisplayName("Carol")),
                ),
            ),
            ResourceList(
                "favourites",
                items=(
                    EntryRef(carol.url("")[1:], DisplayName("Caz")),
                    EntryRef(second.url("")[1:]),
                    External(XcapUri(ALICE, friends).url(ROOT)),
                    External(XcapUri(ALICE, element("resource-lists", "list[9]")).url(ROOT)),
                    External(
                        XcapUri(ALICE, element("resource-lists", 'list[@name="favourites"]')).url(
                            ROOT
                        )
                    ),
                ),
            ),
        )
    )
    found = contacts(document, "favourites")
    assert found is not None
    assert found.contacts == (
        Contact("sip:carol@example.test", "Caz"),
        Contact("sip:bob@example.test"),
    )
    # list[9] does not exist; the list that names itself is walked once.
    assert [e.rpartition("/")[2] for e in found.elsewhere] == ["list%5B9%5D"]
    every = contacts(document, None)
    assert every is not None and [c.uri for c in every.contacts] == [
        "sip:bob@example.test",
        "sip:carol@example.test",
    ]
