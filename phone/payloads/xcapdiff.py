"""XCAP diff (RFC 5874): which XCAP documents, elements and attributes changed.

The phone subscribes to `xcap-diff` for its own documents (RFC 5875) so an
edit made elsewhere (Blink, the web) reaches the contact buttons. A changed
document is identified by its selector and new ETag; the phone simply GETs it
again, so RFC 5261 patch operations inside `<document>` are not kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from phone.payloads import xml
from phone.payloads.error import PayloadError

XCAP_DIFF_NS = "urn:ietf:params:xml:ns:xcap-diff"
CONTENT_TYPE = "application/xcap-diff+xml"
DOCUMENT = "xcap-diff"


@dataclass(frozen=True)
class DocumentChange:
    """A document that changed (RFC 5874 `<document>`); no `new_etag` means it was removed."""

    sel: str
    new_etag: str | None = None
    previous_etag: str | None = None
    body_not_changed: bool = False


@dataclass(frozen=True)
class ElementChange:
    """An element that changed (RFC 5874 `<element>`): its new content, or gone (`exists`)."""

    sel: str
    exists: bool | None = None
    content: bytes | None = None


@dataclass(frozen=True)
class AttributeChange:
    """An attribute that changed (RFC 5874 `<attribute>`): its new value, or gone."""

    sel: str
    exists: bool | None = None
    value: str | None = None


@dataclass(frozen=True)
class XcapDiff:
    xcap_root: str
    documents: tuple[DocumentChange, ...] = ()
    elements: tuple[ElementChange, ...] = ()
    attributes: tuple[AttributeChange, ...] = ()


def _exists(element: xml.Element) -> bool | None:
    raw = element.get("exists")
    return None if raw is None else xml.bool_value(raw, DOCUMENT, "exists attribute")


def _read_document(element: xml.Element) -> DocumentChange:
    return DocumentChange(
        sel=xml.required_attr(element, "sel", DOCUMENT),
        new_etag=element.get("new-etag"),
        previous_etag=element.get("previous-etag"),
        body_not_changed=xml.child(element, XCAP_DIFF_NS, "body-not-changed") is not None,
    )


def _read_element(element: xml.Element) -> ElementChange:
    content = xml.children(element)
    if len(content) > 1:
        raise PayloadError(DOCUMENT, "<element> holds more than one element")
    return ElementChange(
        sel=xml.required_attr(element, "sel", DOCUMENT),
        exists=_exists(element),
        content=etree.tostring(content[0], encoding="UTF-8", with_tail=False) if content else None,
    )


def _read_attribute(element: xml.Element) -> AttributeChange:
    exists = _exists(element)
    return AttributeChange(
        sel=xml.required_attr(element, "sel", DOCUMENT),
        exists=exists,
        value=None if exists is False else (element.text or ""),
    )


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> XcapDiff:
    """Parse an application/xcap-diff+xml body."""
    root = xml.parse(data, document=DOCUMENT, namespace=XCAP_DIFF_NS, root="xcap-diff", limit=limit)
    return XcapDiff(
        xcap_root=xml.required_attr(root, "xcap-root", DOCUMENT),
        documents=tuple(_read_document(e) for e in xml.children(root, XCAP_DIFF_NS, "document")),
        elements=tuple(_read_element(e) for e in xml.children(root, XCAP_DIFF_NS, "element")),
        attributes=tuple(_read_attribute(e) for e in xml.children(root, XCAP_DIFF_NS, "attribute")),
    )


def build(diff: XcapDiff) -> bytes:
    """The application/xcap-diff+xml body for `diff`."""
    root = etree.Element(xml.qname(XCAP_DIFF_NS, "xcap-diff"), nsmap={None: XCAP_DIFF_NS})
    root.set("xcap-root", diff.xcap_root)
    for document in diff.documents:
        element = xml.sub(root, XCAP_DIFF_NS, "document")
        element.set("sel", document.sel)
        if document.previous_etag is not None:
            element.set("previous-etag", document.previous_etag)
        if document.new_etag is not None:
            element.set("new-etag", document.new_etag)
        if document.body_not_changed:
            xml.sub(element, XCAP_DIFF_NS, "body-not-changed")
    for change in diff.elements:
        element = xml.sub(root, XCAP_DIFF_NS, "element")
        element.set("sel", change.sel)
        if change.exists is not None:
            element.set("exists", "1" if change.exists else "0")
        if change.content is not None:
            element.append(xml.parse_any(change.content, document=DOCUMENT))
    for attribute in diff.attributes:
        element = xml.sub(root, XCAP_DIFF_NS, "attribute", attribute.value)
        element.set("sel", attribute.sel)
        if attribute.exists is not None:
            element.set("exists", "1" if attribute.exists else "0")
    return xml.serialise(root)
