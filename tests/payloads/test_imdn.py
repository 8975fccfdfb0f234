"""Message disposition notifications (RFC 5438) and their CPIM envelope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from phone.payloads import PayloadError, cpim, imdn
from phone.payloads.imdn import Disposition, Notification, NotificationKind

RFC_EXAMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
  <message-id>34jk324j</message-id>
  <datetime>2008-04-04T12:16:49-05:00</datetime>
  <recipient-uri>im:bob@example.com</recipient-uri>
  <original-recipient-uri>im:bob@example.com</original-recipient-uri>
  <delivery-notification>
    <status>
      <delivered/>
    </status>
  </delivery-notification>
</imdn>"""

# A message asking for receipts, as RFC 5438 section 6.2 shows it.
REQUEST = (
    b"From: Alice <im:alice@example.com>\r\n"
    b"To: Bob <im:bob@example.com>\r\n"
    b"NS: imdn <urn:ietf:params:imdn>\r\n"
    b"imdn.Message-ID: 34jk324j\r\n"
    b"DateTime: 2006-04-04T12:16:49-05:00\r\n"
    b"imdn.Disposition-Notification: positive-delivery, display, x-unknown\r\n"
    b"\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"Hello"
)


def test_rfc5438_example():
    assert imdn.parse(RFC_EXAMPLE) == Notification(
        message_id="34jk324j",
        datetime=datetime(2008, 4, 4, 12, 16, 49, tzinfo=timezone(timedelta(hours=-5))),
        kind=NotificationKind.DELIVERY,
        status="delivered",
        recipient_uri="im:bob@example.com",
        original_recipient_uri="im:bob@example.com",
    )


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (NotificationKind.DELIVERY, "failed"),
        (NotificationKind.DISPLAY, "displayed"),
        (NotificationKind.PROCESSING, "stored"),
    ],
)
def test_round_trip(kind, status):
    notification = Notification(
        "abc123", datetime(2026, 11, 30, 10, 0, tzinfo=UTC), kind, status, subject="Hi"
    )
    assert imdn.parse(imdn.build(notification)) == notification


def test_build_refuses_a_status_of_another_kind():
    with pytest.raises(ValueError):
        imdn.build(Notification("a", datetime.now(UTC), NotificationKind.DISPLAY, "delivered"))


@pytest.mark.parametrize(
    "mutation",
    [
        (b"<delivered/>", b"<displayed/>"),  # a display status in a delivery notification
        (b"<message-id>34jk324j</message-id>", b""),
        (b"<delivered/>", b"<delivered/><failed/>"),
        (b"<delivery-notification>", b"<display-notification/><delivery-notification>"),
    ],
)
def test_malformed(mutation):
    with pytest.raises(PayloadError):
        imdn.parse(RFC_EXAMPLE.replace(*mutation))


def test_request_and_receipt():
    message = cpim.parse(REQUEST)
    request = imdn.requested(message)
    assert request == imdn.Request(
        "34jk324j", frozenset({Disposition.POSITIVE_DELIVERY, Disposition.DISPLAY})
    )
    now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    receipt = imdn.notification_for(
        message,
        request,
        NotificationKind.DELIVERY,
        "delivered",
        sender=cpim.Identity("im:bob@example.com"),
        now=now,
    )
    parsed = cpim.parse(cpim.build(receipt))
    assert parsed.content_type == imdn.CONTENT_TYPE
    assert ("Content-Disposition", "notification") in parsed.content_headers
    assert parsed.recipients[0].uri == "im:alice@example.com"
    assert imdn.parse(parsed.body).message_id == "34jk324j"
    assert imdn.requested(parsed) is None  # a receipt asks for no receipt


def test_no_request():
    plain = cpim.parse(REQUEST.replace(b"NS: imdn <urn:ietf:params:imdn>\r\n", b""))
    assert imdn.requested(plain) is None
