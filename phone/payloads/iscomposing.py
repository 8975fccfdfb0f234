"""Is-composing indications (RFC 3994): "Bob is typing..." in a chat.

Sent as a MESSAGE or MSRP SEND body. An `active` indication expires after
`refresh` seconds (RFC 3994; 120 s when the sender gives none) unless
refreshed; `idle` ends it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lxml import etree

from phone.payloads import xml
from phone.payloads.error import PayloadError

ISCOMPOSING_NS = "urn:ietf:params:xml:ns:im-iscomposing"
CONTENT_TYPE = "application/im-iscomposing+xml"
DOCUMENT = "isComposing"


class ComposingState(StrEnum):
    IDLE = "idle"
    ACTIVE = "active"


@dataclass(frozen=True)
class IsComposing:
    """One indication (RFC 3994); `refresh` is in seconds and must be positive."""

    state: ComposingState
    last_active: datetime | None = None
    content_type: str | None = None
    refresh: int | None = None


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> IsComposing:
    """Parse an application/im-iscomposing+xml body."""
    root = xml.parse(
        data, document=DOCUMENT, namespace=ISCOMPOSING_NS, root="isComposing", limit=limit
    )
    refresh = xml.optional_int(
        xml.text(xml.child(root, ISCOMPOSING_NS, "refresh")), DOCUMENT, "<refresh>"
    )
    if refresh == 0:
        raise PayloadError(DOCUMENT, "<refresh> must be a positive number of seconds")
    return IsComposing(
        state=xml.enum_value(
            ComposingState, xml.text(xml.child(root, ISCOMPOSING_NS, "state")), DOCUMENT, "<state>"
        ),
        last_active=xml.datetime_value(
            xml.text(xml.child(root, ISCOMPOSING_NS, "lastactive")), DOCUMENT, "<lastactive>"
        ),
        content_type=xml.text(xml.child(root, ISCOMPOSING_NS, "contenttype")),
        refresh=refresh,
    )


def build(indication: IsComposing) -> bytes:
    """The application/im-iscomposing+xml body for `indication`."""
    if indication.refresh is not None and indication.refresh <= 0:
        raise ValueError(f"refresh must be a positive number of seconds, not {indication.refresh}")
    root = etree.Element(xml.qname(ISCOMPOSING_NS, "isComposing"), nsmap={None: ISCOMPOSING_NS})
    xml.sub(root, ISCOMPOSING_NS, "state", indication.state.value)
    if indication.last_active is not None:
        xml.sub(root, ISCOMPOSING_NS, "lastactive", xml.format_datetime(indication.last_active))
    if indication.content_type is not None:
        xml.sub(root, ISCOMPOSING_NS, "contenttype", indication.content_type)
    if indication.refresh is not None:
        xml.sub(root, ISCOMPOSING_NS, "refresh", str(indication.refresh))
    return xml.serialise(root)
