"""XCAP server capabilities (RFC 4825 §12): the auids, extensions and namespaces
a server supports, read once at start from `<root>/xcap-caps/global/index`.

The phone asks before it uses an application: a server without
`org.openmobilealliance.pres-rules` gets RFC 5025's `pres-rules`, one without
`rls-services` gets no RLS.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from phone.payloads import xml
from phone.payloads.error import PayloadError

XCAP_CAPS_NS = "urn:ietf:params:xml:ns:xcap-caps"
CONTENT_TYPE = "application/xcap-caps+xml"
AUID = "xcap-caps"
DOCUMENT = "xcap-caps"


@dataclass(frozen=True)
class XcapCaps:
    auids: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()

    def supports(self, auid: str) -> bool:
        return auid in self.auids


_SECTIONS = (("auids", "auid"), ("extensions", "extension"), ("namespaces", "namespace"))


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> XcapCaps:
    """Parse an application/xcap-caps+xml body."""
    root = xml.parse(data, document=DOCUMENT, namespace=XCAP_CAPS_NS, root="xcap-caps", limit=limit)
    found: dict[str, tuple[str, ...]] = {}
    for section, item in _SECTIONS:
        element = xml.child(root, XCAP_CAPS_NS, section)
        if element is None and section != "extensions":  # the one optional section
            raise PayloadError(DOCUMENT, f"<{section}> is missing")
        if element is None:
            continue
        found[section] = tuple(xml.text(e) or "" for e in xml.children(element, XCAP_CAPS_NS, item))
    return XcapCaps(**found)


def build(caps: XcapCaps) -> bytes:
    """The application/xcap-caps+xml body for `caps`."""
    root = etree.Element(xml.qname(XCAP_CAPS_NS, "xcap-caps"), nsmap={None: XCAP_CAPS_NS})
    for section, item in _SECTIONS:
        element = xml.sub(root, XCAP_CAPS_NS, section)
        for value in getattr(caps, section):
            xml.sub(element, XCAP_CAPS_NS, item, value)
    return xml.serialise(root)
