"""RLS services (RFC 4826 §4)."""

from __future__ import annotations

import pytest

from phone.payloads import PayloadError, rlsservices
from phone.payloads.resourcelists import Entry, ResourceList
from phone.payloads.rlsservices import RlsServices, Service
from tests.payloads.sampledata import sample
from tests.payloads.xsd import assert_valid


def test_rfc4826_example() -> None:
    document = rlsservices.parse(sample("rfc4826-rls-services.xml"))
    buddies, marketing = document.services
    assert buddies.uri == "sip:mybuddies@example.com"
    assert buddies.resource_list is not None and buddies.resource_list.endswith("%5d")
    assert buddies.list is None and buddies.packages == ("presence",)
    assert marketing.list == ResourceList(
        name="marketing",
        items=(Entry("sip:joe@example.com"), Entry("sip:sudhir@example.com")),
    )
    assert document.for_package("presence") == document.services
    assert document.for_package("dialog") == ()
    rebuilt = rlsservices.build(document)
    assert_valid(rebuilt)
    assert rlsservices.parse(rebuilt) == document


def test_built_document_is_valid() -> None:
    document = RlsServices(
        (
            Service("sip:alice-buddies@example.test", resource_list="/xcap-root/x"),
            Service(
                "sip:all@example.test",
                list=ResourceList(items=(ResourceList("nested", items=(Entry("sip:b@x"),)),)),
                packages=("presence", "dialog"),
            ),
        )
    )
    body = rlsservices.build(document)
    assert_valid(body)
    assert rlsservices.parse(body) == document
    assert Service("sip:x@y", resource_list="z").serves("anything")


RS = b'<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">'


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (RS + b"<service><resource-list>x</resource-list></service></rls-services>", "uri"),
        (RS + b'<service uri="sip:x"/></rls-services>', "exactly one"),
        (
            RS + b'<service uri="sip:x"><resource-list>x</resource-list><list/></service>'
            b"</rls-services>",
            "exactly one",
        ),
    ],
)
def test_malformed(document: bytes, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        rlsservices.parse(document)
