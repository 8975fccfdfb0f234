"""XCAP error bodies (RFC 4825 §11): why a server answered 409 Conflict.

The one child of `<xcap-error>` names the conflict (`schema-validation-error`,
`uniqueness-failure`, ...) with an optional human `phrase`; `no-parent` may
name the closest existing ancestor, and `uniqueness-failure` the fields that
clashed with values the server would accept instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

from phone.payloads import xml
from phone.payloads.error import PayloadError

XCAP_ERROR_NS = "urn:ietf:params:xml:ns:xcap-error"
CONTENT_TYPE = "application/xcap-error+xml"
DOCUMENT = "xcap-error"


class ConflictKind(StrEnum):
    """The error elements of RFC 4825 §11.1."""

    NOT_WELL_FORMED = "not-well-formed"
    NOT_XML_FRAG = "not-xml-frag"
    NO_PARENT = "no-parent"
    SCHEMA_VALIDATION_ERROR = "schema-validation-error"
    NOT_XML_ATT_VALUE = "not-xml-att-value"
    CANNOT_INSERT = "cannot-insert"
    CANNOT_DELETE = "cannot-delete"
    UNIQUENESS_FAILURE = "uniqueness-failure"
    CONSTRAINT_FAILURE = "constraint-failure"
    EXTENSION = "extension"
    NOT_UTF_8 = "not-utf-8"


@dataclass(frozen=True)
class Uniqueness:
    """A field (a node selector) whose value clashed, and values that would not."""

    field: str
    alt_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class XcapConflict:
    kind: ConflictKind
    phrase: str | None = None
    ancestor: str | None = None
    uniqueness: tuple[Uniqueness, ...] = ()

    def __str__(self) -> str:
        details = [self.kind.value]
        if self.phrase:
            details.append(repr(self.phrase))
        if self.ancestor:
            details.append(f"closest ancestor {self.ancestor}")
        for clash in self.uniqueness:
            alternatives = ", ".join(clash.alt_values) or "none offered"
            details.append(f"{clash.field} not unique (try {alternatives})")
        return "; ".join(details)


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> XcapConflict:
    """Parse an application/xcap-error+xml body."""
    root = xml.parse(
        data, document=DOCUMENT, namespace=XCAP_ERROR_NS, root="xcap-error", limit=limit
    )
    errors = xml.children(root)
    if len(errors) != 1:
        raise PayloadError(DOCUMENT, f"<xcap-error> holds {len(errors)} elements, not one")
    error = errors[0]
    if xml.namespace_of(error) != XCAP_ERROR_NS:
        raise PayloadError(DOCUMENT, f"unknown error element {error.tag}")
    kind = xml.enum_value(ConflictKind, xml.local_name(error), DOCUMENT, "the error element")
    ancestor = xml.child(error, XCAP_ERROR_NS, "ancestor")
    return XcapConflict(
        kind=kind,
        phrase=error.get("phrase"),
        ancestor=None if ancestor is None else xml.text(ancestor),
        uniqueness=tuple(
            Uniqueness(
                field=xml.required_attr(exists, "field", DOCUMENT),
                alt_values=tuple(
                    xml.text(v) or "" for v in xml.children(exists, XCAP_ERROR_NS, "alt-value")
                ),
            )
            for exists in xml.children(error, XCAP_ERROR_NS, "exists")
        ),
    )


def build(conflict: XcapConflict) -> bytes:
    """The application/xcap-error+xml body for `conflict`."""
    root = etree.Element(xml.qname(XCAP_ERROR_NS, "xcap-error"), nsmap={None: XCAP_ERROR_NS})
    error = xml.sub(root, XCAP_ERROR_NS, conflict.kind.value)
    if conflict.phrase is not None:
        error.set("phrase", conflict.phrase)
    if conflict.ancestor is not None:
        xml.sub(error, XCAP_ERROR_NS, "ancestor", conflict.ancestor)
    for clash in conflict.uniqueness:
        exists = xml.sub(error, XCAP_ERROR_NS, "exists")
        exists.set("field", clash.field)
        for value in clash.alt_values:
            xml.sub(exists, XCAP_ERROR_NS, "alt-value", value)
    return xml.serialise(root)
