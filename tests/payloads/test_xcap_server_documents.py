"""The documents an XCAP server itself serves: xcap-caps (RFC 4825 §12), xcap-error
(RFC 4825 §11) and OMA's xcap-directory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from phone.payloads import PayloadError, xcapcaps, xcapdirectory, xcaperror
from phone.payloads.xcapcaps import XcapCaps
from phone.payloads.xcapdirectory import DirectoryEntry, Folder, XcapDirectory
from phone.payloads.xcaperror import ConflictKind, Uniqueness, XcapConflict
from tests.payloads.xsd import assert_valid

KAMAILIO_CAPS = b"""<?xml version='1.0' encoding='UTF-8'?>
<xcap-caps xmlns='urn:ietf:params:xml:ns:xcap-caps'>
<auids><auid>rls-services</auid><auid>pidf-manipulation</auid><auid>xcap-caps</auid>
<auid>resource-lists</auid><auid>pres-rules</auid><auid>org.openmobilealliance.pres-rules</auid>
</auids><extensions></extensions>
<namespaces><namespace>urn:ietf:params:xml:ns:rls-services</namespace></namespaces>
</xcap-caps>"""


def test_caps() -> None:
    caps = xcapcaps.parse(KAMAILIO_CAPS)
    assert caps.supports("pres-rules") and not caps.supports("dialog-rules")
    assert caps.extensions == () and caps.namespaces == ("urn:ietf:params:xml:ns:rls-services",)
    built = XcapCaps(("resource-lists",), ("xcap-diff",), ("urn:x",))
    assert_valid(xcapcaps.build(built))
    assert xcapcaps.parse(xcapcaps.build(built)) == built
    without_extensions = KAMAILIO_CAPS.replace(b"<extensions></extensions>", b"")
    assert xcapcaps.parse(without_extensions) == caps
    with pytest.raises(PayloadError, match="auids"):
        xcapcaps.parse(b'<xcap-caps xmlns="urn:ietf:params:xml:ns:xcap-caps"/>')


@pytest.mark.parametrize(
    "conflict",
    [
        XcapConflict(ConflictKind.SCHEMA_VALIDATION_ERROR, "missing uri"),
        XcapConflict(ConflictKind.NO_PARENT, ancestor="http://x/root/resource-lists/users/u/index"),
        XcapConflict(
            ConflictKind.UNIQUENESS_FAILURE,
            uniqueness=(Uniqueness("rls-services/service/@uri", ("sip:a@x", "sip:b@x")),),
        ),
        XcapConflict(ConflictKind.NOT_UTF_8),
    ],
)
def test_xcap_errors(conflict: XcapConflict) -> None:
    body = xcaperror.build(conflict)
    assert_valid(body)
    assert xcaperror.parse(body) == conflict
    assert conflict.kind.value in str(conflict)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b'<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error"/>', "holds 0"),
        (b'<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error"><oops/></xcap-error>', "unknown"),
        (
            b'<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error"><x:a xmlns:x="y"/></xcap-error>',
            "unknown",
        ),
    ],
)
def test_malformed_xcap_errors(document: bytes, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        xcaperror.parse(document)


def test_directory() -> None:
    directory = XcapDirectory(
        (
            Folder(
                "resource-lists",
                (
                    DirectoryEntry(
                        "http://x/root/resource-lists/users/sip:a@x/index",
                        '"sr-1"',
                        datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
                        220,
                    ),
                ),
            ),
            Folder("pres-rules", error_code="500"),
        )
    )
    body = xcapdirectory.build(directory)
    assert_valid(body)
    assert xcapdirectory.parse(body) == directory
    assert directory.folder("pres-rules") == Folder("pres-rules", error_code="500")
    assert (
        xcapdirectory.parse(
            b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
            b'<xcap-directory xmlns="urn:oma:xml:xdm:xcap-directory">\r\n</xcap-directory>'
        )
        == XcapDirectory()
    )
    with pytest.raises(PayloadError, match="size"):
        xcapdirectory.parse(
            b'<xcap-directory xmlns="urn:oma:xml:xdm:xcap-directory"><folder auid="a">'
            b'<entry uri="u" etag="e" size="-1"/></folder></xcap-directory>'
        )


@pytest.mark.parametrize(
    "document",
    [
        b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry/></list>'
        b"</resource-lists>",
        b'<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy"><cr:rule id="1a"/>'
        b"</cr:ruleset>",
        b'<cr:ruleset xmlns:cr="urn:ietf:params:xml:ns:common-policy"'
        b' xmlns:pr="urn:ietf:params:xml:ns:pres-rules"><cr:rule id="a"><cr:actions>'
        b"<pr:sub-handling>maybe</pr:sub-handling></cr:actions></cr:rule></cr:ruleset>",
        b'<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error"/>',
    ],
)
def test_the_schemas_refuse_invalid_documents(document: bytes) -> None:
    """The validators used above can fail: they hold the RFCs' constraints."""
    with pytest.raises(AssertionError):
        assert_valid(document)
