"""The shared parser refuses hostile XML before it can do harm."""

from __future__ import annotations

import time

import pytest

from phone.payloads import (
    PayloadError,
    conference,
    dialoginfo,
    iscomposing,
    pidf,
    rlmi,
    watcherinfo,
    xcapdiff,
    xml,
)

PARSERS = [
    pidf.parse,
    rlmi.parse,
    watcherinfo.parse,
    dialoginfo.parse,
    conference.parse,
    xcapdiff.parse,
    iscomposing.parse,
]

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">
<tuple id="t"><status><basic>open</basic></status><note>&lol9;</note></tuple>
</presence>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE presence [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">
<tuple id="t"><status><basic>open</basic></status><note>&xxe;</note></tuple>
</presence>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE presence SYSTEM "http://127.0.0.1:9/evil.dtd">
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>"""

UNDECLARED_ENTITY = b"""<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&xxe;"/>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
@pytest.mark.parametrize("parse", PARSERS)
def test_doctype_refused_without_expansion(parse, document):
    started = time.perf_counter()
    with pytest.raises(PayloadError, match="DOCTYPE"):
        parse(document)
    assert time.perf_counter() - started < 0.5


def test_doctype_hidden_by_utf16_is_refused():
    document = EXTERNAL_ENTITY.replace(b'version="1.0"', b'version="1.0" encoding="UTF-16"')
    encoded = document.decode("ascii").encode("utf-16")
    assert b"<!DOCTYPE" not in encoded
    with pytest.raises(PayloadError, match="DOCTYPE"):
        pidf.parse(encoded)


def test_undeclared_entity_is_an_error():
    with pytest.raises(PayloadError, match="not well-formed"):
        pidf.parse(UNDECLARED_ENTITY)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(
    "document",
    [b"", b"not xml at all", b"<presence", b"\xff\xfe\x00garbage", b"<?xml version='1.0'?>"],
)
def test_not_xml(parse, document):
    with pytest.raises(PayloadError):
        parse(document)


@pytest.mark.parametrize("parse", PARSERS)
def test_wrong_root(parse):
    with pytest.raises(PayloadError, match="root element"):
        parse(b'<presence xmlns="urn:example:not-the-right-one" entity="x"/>')


def test_right_name_wrong_namespace():
    with pytest.raises(PayloadError, match="root element"):
        pidf.parse(b'<presence entity="sip:a@b"/>')


def test_size_cap_is_enforced_and_configurable():
    note = b"x" * (xml.DOCUMENT_LIMIT + 1)
    document = (
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>'
        + note
        + b"</note></presence>"
    )
    with pytest.raises(PayloadError, match="limit"):
        pidf.parse(document)
    assert pidf.parse(document, limit=len(document)).notes[0].text == note.decode()


def test_text_input_is_refused():
    with pytest.raises(PayloadError, match="bytes"):
        pidf.parse('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x"/>')  # type: ignore[arg-type]


def test_error_names_the_document():
    with pytest.raises(PayloadError) as caught:
        watcherinfo.parse(b"<oops")
    assert caught.value.document == "watcherinfo"
    assert str(caught.value).startswith("watcherinfo: ")
    assert isinstance(caught.value, ValueError)


def test_deep_nesting_is_refused_quickly():
    depth = 50_000
    document = (
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>'
        + b"<x>" * depth
        + b"</x>" * depth
        + b"</note></presence>"
    )
    started = time.perf_counter()
    with pytest.raises(PayloadError, match="not well-formed"):
        pidf.parse(document, limit=len(document))
    assert time.perf_counter() - started < 0.5
