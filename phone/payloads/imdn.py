"""Instant message disposition notifications (RFC 5438): "delivered" and
"displayed" receipts for chat messages.

A sender asks for them in the CPIM envelope: `NS: imdn
<urn:ietf:params:imdn>`, `imdn.Message-ID` and `imdn.Disposition-
Notification: positive-delivery, negative-delivery, display`. The receipt
is itself a CPIM message whose content is a `message/imdn+xml` document
naming the message-id and its status, with `Content-Disposition:
notification`. `requested` reads the request, `notification_for` builds
the receipt, `parse` and `build` handle the XML.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lxml import etree

from phone.payloads import cpim, xml
from phone.payloads.error import PayloadError

IMDN_NS = "urn:ietf:params:xml:ns:imdn"
CPIM_NS = "urn:ietf:params:imdn"  # the CPIM header namespace (section 10)
CONTENT_TYPE = "message/imdn+xml"
DOCUMENT = "imdn"


class NotificationKind(StrEnum):
    DELIVERY = "delivery-notification"
    DISPLAY = "display-notification"
    PROCESSING = "processing-notification"


class Disposition(StrEnum):
    """What `imdn.Disposition-Notification` may ask for (section 6.2)."""

    POSITIVE_DELIVERY = "positive-delivery"
    NEGATIVE_DELIVERY = "negative-delivery"
    DISPLAY = "display"
    PROCESSING = "processing"


_STATUSES = {
    NotificationKind.DELIVERY: ("delivered", "failed", "forbidden", "error"),
    NotificationKind.DISPLAY: ("displayed", "forbidden", "error"),
    NotificationKind.PROCESSING: ("processed", "stored", "forbidden", "error"),
}


@dataclass(frozen=True)
class Notification:
    """One IMDN document (section 7.2)."""

    message_id: str
    datetime: datetime
    kind: NotificationKind
    status: str  # one of the kind's statuses, e.g. "delivered"
    recipient_uri: str | None = None
    original_recipient_uri: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class Request:
    """The receipts a CPIM message asks for, and the id they must name."""

    message_id: str
    dispositions: frozenset[Disposition]


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> Notification:
    root = xml.parse(data, document=DOCUMENT, namespace=IMDN_NS, root="imdn", limit=limit)

    def field(name: str) -> str | None:
        return xml.text(xml.child(root, IMDN_NS, name))

    message_id = field("message-id")
    when = xml.datetime_value(field("datetime"), DOCUMENT, "<datetime>")
    if not message_id or when is None:
        raise PayloadError(DOCUMENT, "<message-id> and <datetime> are required")
    kinds = [k for k in NotificationKind if xml.child(root, IMDN_NS, k.value) is not None]
    if len(kinds) != 1:
        raise PayloadError(DOCUMENT, "exactly one kind of notification is required")
    element = xml.child(root, IMDN_NS, kinds[0].value)
    status_element = None if element is None else xml.child(element, IMDN_NS, "status")
    statuses = [] if status_element is None else list(status_element)
    names = [xml.local_name(s) for s in statuses if xml.namespace_of(s) == IMDN_NS]
    if len(names) != 1 or names[0] not in _STATUSES[kinds[0]]:
        raise PayloadError(DOCUMENT, f"bad <status> in <{kinds[0].value}>: {names}")
    return Notification(
        message_id=message_id,
        datetime=when,
        kind=kinds[0],
        status=names[0],
        recipient_uri=field("recipient-uri"),
        original_recipient_uri=field("original-recipient-uri"),
        subject=field("subject"),
    )


def build(notification: Notification) -> bytes:
    if notification.status not in _STATUSES[notification.kind]:
        raise ValueError(f"{notification.status!r} is not a {notification.kind.value} status")
    root = etree.Element(xml.qname(IMDN_NS, "imdn"), nsmap={None: IMDN_NS})
    xml.sub(root, IMDN_NS, "message-id", notification.message_id)
    xml.sub(root, IMDN_NS, "datetime", xml.format_datetime(notification.datetime))
    for name, value in (
        ("recipient-uri", notification.recipient_uri),
        ("original-recipient-uri", notification.original_recipient_uri),
        ("subject", notification.subject),
    ):
        if value is not None:
            xml.sub(root, IMDN_NS, name, value)
    kind = xml.sub(root, IMDN_NS, notification.kind.value)
    xml.sub(xml.sub(kind, IMDN_NS, "status"), IMDN_NS, notification.status)
    return xml.serialise(root)


def _prefix(message: cpim.CpimMessage) -> str | None:
    return next((p for p, uri in message.namespaces.items() if uri == CPIM_NS and p), None)


def requested(message: cpim.CpimMessage) -> Request | None:
    """The receipts `message` asks for, or None (no imdn headers, or no id)."""
    prefix = _prefix(message)
    if prefix is None:
        return None
    values = {h.name.lower(): h.value for h in message.headers}
    message_id = values.get(f"{prefix}.message-id".lower())
    wanted = values.get(f"{prefix}.disposition-notification".lower(), "")
    dispositions = set()
    for item in wanted.split(","):
        try:
            dispositions.add(Disposition(item.strip().lower()))
        except ValueError:
            continue  # section 6.2: unknown values are ignored
    if not message_id or not dispositions:
        return None
    return Request(message_id, frozenset(dispositions))


def notification_for(
    message: cpim.CpimMessage,
    request: Request,
    kind: NotificationKind,
    status: str,
    *,
    sender: cpim.Identity,
    now: datetime,
) -> cpim.CpimMessage:
    """The CPIM receipt for `message`, from us (`sender`) back to its sender (section 7.1)."""
    if message.sender is None:
        raise ValueError("the message has no From to send the receipt to")
    document = Notification(
        message_id=request.message_id,
        datetime=now,
        kind=kind,
        status=status,
        original_recipient_uri=message.recipients[0].uri if message.recipients else None,
    )
    return cpim.CpimMessage(
        content_type=CONTENT_TYPE,
        body=build(document),
        sender=sender,
        recipients=(message.sender,),
        timestamp=now,
        namespaces={"imdn": CPIM_NS},
        headers=(cpim.Header("imdn.Message-ID", secrets.token_hex(10)),),
        content_headers=(("Content-Disposition", "notification"),),
    )
