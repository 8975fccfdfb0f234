"""XCAP diff (RFC 5874)."""

from __future__ import annotations

import pytest

from phone.payloads import PayloadError, xcapdiff
from phone.payloads.xcapdiff import AttributeChange, DocumentChange, ElementChange, XcapDiff
from tests.payloads.sampledata import sample


def test_rfc5874_example():
    diff = xcapdiff.parse(sample("rfc5874-xcapdiff.xml"))
    assert diff.xcap_root == "http://xcap.example.com/root/"
    lists, rls, rules = diff.documents
    assert lists == DocumentChange("resource-lists/users/sip:joe@example.com/index", "7", "6")
    assert rls.body_not_changed and rls.new_etag == rls.previous_etag == "xyz"
    assert rules.new_etag is None
    added, removed = diff.elements
    assert added.exists is None
    assert added.content is not None and b"Bill Doe" in added.content
    assert b'uri="sip:bill@example.com"' in added.content
    assert removed.exists is False and removed.content is None
    name, gone = diff.attributes
    assert name.value == "friends"
    assert gone == AttributeChange(gone.sel, exists=False, value=None)
    assert xcapdiff.parse(xcapdiff.build(diff)).documents == diff.documents


def test_round_trip():
    diff = XcapDiff(
        "http://127.0.0.1:5080/xcap-root",
        (DocumentChange("resource-lists/users/sip:alice@example.test/index", "b", "a", False),),
        (
            ElementChange(
                "resource-lists/users/sip:alice@example.test/index/~~/resource-lists/list",
                True,
                b'<list xmlns="urn:ietf:params:xml:ns:resource-lists" name="friends"/>',
            ),
        ),
        (AttributeChange("x/~~/a/@b", True, "v"),),
    )
    assert xcapdiff.parse(xcapdiff.build(diff)) == diff


XD = b'<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" xcap-root="http://x/">'


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b'<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff"/>', "xcap-root"),
        (XD + b'<document new-etag="1"/></xcap-diff>', "sel"),
        (XD + b'<element sel="s" exists="maybe"/></xcap-diff>', "exists"),
        (XD + b'<element sel="s"><a/><b/></element></xcap-diff>', "more than one"),
        (XD + b"<attribute>v</attribute></xcap-diff>", "sel"),
    ],
)
def test_malformed(document, problem):
    with pytest.raises(PayloadError, match=problem):
        xcapdiff.parse(document)
