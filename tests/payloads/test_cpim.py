"""Message/CPIM (RFC 3862)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from phone.payloads import PayloadError, cpim
from phone.payloads.cpim import CpimMessage, Header, Identity, Subject
from tests.payloads.sampledata import sample


def test_rfc3862_example():
    message = cpim.parse(sample("rfc3862-message.cpim"))
    assert message.sender == Identity("im:piglet@100akerwood.com", "MR SANDERS")
    assert message.recipients == (Identity("im:eeyore@100akerwood.com", "Depressed Donkey"),)
    assert message.timestamp == datetime(2000, 12, 13, 13, 40, tzinfo=timezone(timedelta(hours=-8)))
    assert message.subjects == (
        Subject("the weather will be fine today"),
        Subject("beau temps prevu pour aujourd'hui", "fr"),
    )
    assert message.namespaces == {"MyFeatures": "mid:MessageFeatures@id.foo.com"}
    assert message.require == ("MyFeatures.VitalMessageOption",)
    assert message.headers == (
        Header("MyFeatures.VitalMessageOption", "Confirmation-requested"),
        Header("MyFeatures.WackyMessageOption", "Use-silly-font"),
    )
    assert message.content_type == "text/xml; charset=utf-8"
    assert message.content_headers == (("Content-ID", "<1234567890@foo.com>"),)
    assert message.body == b"<body>\r\nHere is the text of my message.\r\n</body>\r\n"
    assert cpim.parse(cpim.build(message)) == message


def test_blink_chat_message():
    message = cpim.parse(sample("blink-message.cpim"))
    assert message.sender == Identity("sip:bob@example.test", "Bob")
    assert message.recipients == (Identity("sip:alice@example.test"),)
    assert message.namespaces == {"blink": "urn:ag-projects:xml:ns:cpim"}
    assert message.headers[0].name == "blink.disposition-notification"
    assert message.body.decode() == "See you at 9 ☕"
    assert message.content_type == "text/plain"


def test_bare_lf_line_endings_are_accepted():
    text = sample("rfc3862-message.cpim").replace(b"\r\n", b"\n")
    assert cpim.parse(text).subjects[1].lang == "fr"


def test_build_escapes_line_breaks_and_round_trips():
    message = CpimMessage(
        content_type="text/plain;charset=utf-8",
        body="Ciao, Zoë!\r\nsecond line".encode(),
        sender=Identity("sip:alice@example.test", 'Alice "the phone" \\ Smith'),
        recipients=(Identity("sip:bob@example.test", "Bob"), Identity("sip:carol@example.test")),
        cc=(Identity("sip:dave@example.test"),),
        timestamp=datetime(2026, 11, 24, 20, 0, 0, 250000, tzinfo=UTC),
        subjects=(Subject("line one\r\nInjected: yes"), Subject("Grüße", "de")),
        namespaces={"imdn": "urn:ietf:params:imdn", None: "urn:example:default"},
        require=("imdn.Message-ID", "imdn.Disposition-Notification"),
        headers=(
            Header("imdn.Message-ID", "34jk324j"),
            Header("imdn.Flag", "x", (("p", "1"), ("q", "2"))),
        ),
        content_headers=(("Content-Disposition", "render"),),
    )
    body = cpim.build(message)
    assert b"\r\nInjected: yes" not in body
    assert b"Subject: line one\\u000d\\u000aInjected: yes\r\n" in body
    assert cpim.parse(body) == message


def test_header_value_escapes():
    text = (
        b"From: <sip:a@example.test>\r\n"
        b"Subject: caf\\u00e9 \\\\ back\\r\\nslash \\ud800 C:\\q\r\n"
        b"Required: blink.x\r\n"
        b"\r\nContent-Type: text/plain\r\n\r\n"
    )
    message = cpim.parse(text)
    assert message.subjects == (Subject("caf\u00e9 \\ back\r\nslash \\ud800 C:\\q"),)
    assert message.require == ("blink.x",)


def test_build_refuses_unsendable_headers():
    with pytest.raises(ValueError, match="header"):
        cpim.build(CpimMessage("text/plain", b"", headers=(Header("From", "x"),)))
    with pytest.raises(ValueError, match="header"):
        cpim.build(CpimMessage("text/plain", b"", headers=(Header("bad name", "x"),)))
    with pytest.raises(ValueError, match="line break"):
        cpim.build(CpimMessage("text/plain\r\nX: y", b""))
    with pytest.raises(ValueError, match="header"):
        cpim.build(CpimMessage("text/plain", b"", content_headers=(("Content-Type", "x"),)))


GOOD = b"From: <sip:a@example.test>\r\nTo: <sip:b@example.test>\r\n\r\nContent-Type: text/plain\r\n\r\nhi"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "blank line after the message headers"),
        (GOOD.replace(b"\r\n\r\nhi", b"\r\nhi"), "blank line after the MIME headers"),
        (b"From <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\n", "malformed header"),
        (b"From: sip:a@x\r\n\r\nContent-Type: text/plain\r\n\r\n", "Name <URI>"),
        (b"To: a@x>\r\n\r\nContent-Type: text/plain\r\n\r\n", "Name <URI>"),
        (
            b"From: <sip:a@x>\r\nFrom: <sip:b@x>\r\n\r\nContent-Type: text/plain\r\n\r\n",
            "more than one",
        ),
        (b"DateTime: yesterday\r\n\r\nContent-Type: text/plain\r\n\r\n", "DateTime"),
        (b"Subject: hi\r\n folded\r\n\r\nContent-Type: text/plain\r\n\r\n", "continuation"),
        (b"From: <sip:a@x>\r\n\r\nContent-ID: <x>\r\n\r\nhi", "Content-Type"),
        (b"From: <sip:a@x>\r\n\r\nnot a header\r\n\r\nhi", "MIME header"),
        (b"Subject: \xff\xfe\r\n\r\nContent-Type: text/plain\r\n\r\n", "UTF-8"),
        (b"Subject:;=x hi\r\n\r\nContent-Type: text/plain\r\n\r\n", "parameter"),
    ],
)
def test_malformed(body, problem):
    with pytest.raises(PayloadError, match=problem):
        cpim.parse(body)


def test_size_cap():
    with pytest.raises(PayloadError, match="limit"):
        cpim.parse(GOOD, limit=10)
