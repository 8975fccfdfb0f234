"""MSRP frames: serializer, streaming parser, typed headers (RFC 4975 sections 7, 9)."""

from __future__ import annotations

import pytest

from phone.msrp.error import MsrpError
from phone.msrp.message import ByteRange, ContinuationFlag, Frame, ReportMode, Status, response_to
from phone.msrp.parser import BodyPart, FrameEnd, FrameHead, FrameParser, FramingError

# RFC 4975 section 7.1.1's SEND and its 200 (with the Byte-Range corrected to the body's size).
RFC_SEND = (
    b"MSRP a786hjs2 SEND\r\n"
    b"To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n"
    b"From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n"
    b"Message-ID: 87652491\r\n"
    b"Byte-Range: 1-23/23\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"Hey Bob, are you there?\r\n"
    b"-------a786hjs2$\r\n"
)
RFC_OK = (
    b"MSRP a786hjs2 200 OK\r\n"
    b"To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n"
    b"From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n"
    b"-------a786hjs2$\r\n"
)


def frames_of(*pieces: bytes) -> list[Frame]:
    """Whole frames from a parser fed `pieces` one at a time; fails on a framing error."""
    parser, frames, body = FrameParser(), [], bytearray()
    for piece in pieces:
        for event in parser.feed(piece):
            assert not isinstance(event, FramingError), event
            if isinstance(event, FrameHead):
                current, body = event.frame, bytearray()
            elif isinstance(event, BodyPart):
                body += event.data
            elif isinstance(event, FrameEnd):
                current.body = bytes(body)
                frames.append(current)
    return frames


def test_rfc_example_parses():
    send, ok = frames_of(RFC_SEND + RFC_OK)
    assert send.method == "SEND" and send.tid == "a786hjs2"
    assert send.message_id == "87652491" and send.byte_range == ByteRange(1, 23, 23)
    assert send.content_type == "text/plain" and send.body == b"Hey Bob, are you there?"
    assert send.flag is ContinuationFlag.END
    assert send.to_path[0].session_id == "kjhd37s2s20w2a"
    assert ok.status == 200 and ok.comment == "OK" and ok.body == b""


def test_serializer_reproduces_the_rfc_frames():
    send, ok = frames_of(RFC_SEND + RFC_OK)
    assert send.encode() == RFC_SEND
    assert ok.encode() == RFC_OK
    assert response_to(send, 200).encode() == RFC_OK


@pytest.mark.parametrize("step", [1, 2, 3, 7, 50])
def test_any_split_gives_the_same_frames(step):
    data = RFC_SEND + RFC_OK
    pieces = [data[i : i + step] for i in range(0, len(data), step)]
    assert [f.encode() for f in frames_of(*pieces)] == [RFC_SEND, RFC_OK]


def test_body_with_things_that_look_like_end_lines():
    body = (
        b"-------a786hjs2$\r\n"  # no CRLF before it: body
        b"\r\n-------a786hjs2X\r\n"  # not a flag
        b"\r\n-------a786hjs2$ \r\n"  # flag not followed by CRLF
        b"\r\n-------other123$\r\n"  # another transaction
        b"\r\n-------a786hjs2"  # at the very end, without a flag
    )
    frame = Frame("a786hjs2", method="SEND", headers=[("Message-ID", "m1234")], body=body)
    frame.content_type = "text/plain"
    data = frame.encode()
    for split in range(len(data)):
        (parsed,) = frames_of(data[:split], data[split:])
        assert parsed.body == body


def test_body_holding_its_own_end_line_is_refused():
    frame = Frame("abcd1234", method="SEND", body=b"x\r\n-------abcd1234$\r\n")
    frame.content_type = "text/plain"
    with pytest.raises(ValueError):
        frame.encode()


@pytest.mark.parametrize(("name", "value"), [("X-Ünknown", "1"), ("X:Y", "1"), ("X", "a\r\nB: c")])
def test_headers_that_cannot_be_sent(name, value):
    with pytest.raises(ValueError):
        Frame("abcd1234", method="SEND", headers=[(name, value)]).encode()


def test_empty_body_and_no_body():
    empty = Frame("abcd1234", method="SEND", headers=[("Message-ID", "m1234")])
    empty.content_type = "text/plain"
    assert empty.encode().endswith(b"Content-Type: text/plain\r\n\r\n\r\n-------abcd1234$\r\n")
    (parsed,) = frames_of(empty.encode())
    assert parsed.content_type == "text/plain" and parsed.body == b""
    bare = Frame("abcd1234", method="SEND", flag=ContinuationFlag.MORE)
    assert bare.encode() == b"MSRP abcd1234 SEND\r\n-------abcd1234+\r\n"


def test_typed_headers():
    frame = Frame(
        "abcd1234",
        method="REPORT",
        headers=[
            ("Success-Report", "yes"),
            ("Failure-Report", "partial"),
            ("Status", "000 413 Too big"),
            ("Byte-Range", "1-*/*"),
            ("Expires", "600"),
        ],
    )
    assert frame.success_report and frame.failure_report is ReportMode.PARTIAL
    assert frame.report_status == Status(413, "Too big")
    assert str(frame.report_status) == "000 413 Too big"
    assert frame.byte_range == ByteRange(1, None, None) and str(frame.byte_range) == "1-*/*"
    assert frame.int_header("Expires") == 600
    assert Frame("abcd1234", method="SEND").failure_report is ReportMode.YES


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Byte-Range", "0-5/5"),
        ("Byte-Range", "3-1/5"),
        ("Byte-Range", "1-9/5"),
        ("Byte-Range", "1-5"),
        ("Success-Report", "partial"),
        ("Failure-Report", "maybe"),
        ("Status", "200 OK"),
        ("Message-ID", "x"),
        ("Expires", "-1"),
        ("To-Path", "sip:bob@example.com"),
    ],
)
def test_bad_header_values_are_400(name, value):
    frame = Frame("abcd1234", method="SEND", headers=[(name, value)])
    accessor = {
        "Byte-Range": lambda: frame.byte_range,
        "Success-Report": lambda: frame.success_report,
        "Failure-Report": lambda: frame.failure_report,
        "Status": lambda: frame.report_status,
        "Message-ID": lambda: frame.message_id,
        "Expires": lambda: frame.int_header("Expires"),
        "To-Path": lambda: frame.to_path,
    }[name]
    with pytest.raises(MsrpError) as caught:
        accessor()
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("data", "tid"),
    [
        (b"HTTP/1.1 200 OK\r\n", None),
        (b"MSRP ab SEND\r\n", None),  # transaction id too short
        (b"MSRP abcd1234 send\r\n", None),
        (b"MSRP abcd1234 SEND\r\nTo-Path msrp://a:1/b;tcp\r\n", "abcd1234"),
        (b"MSRP abcd1234 SEND\r\n-------wxyz9876$\r\n", "abcd1234"),
        (b"MSRP abcd1234 SEND\r\n-------abcd1234!\r\n", "abcd1234"),
        (b"MSRP abcd1234 SEND\r\nX: \x01\r\n", "abcd1234"),
    ],
)
def test_framing_errors_stop_the_parser(data, tid):
    parser = FrameParser()
    events = parser.feed(data)
    assert len(events) == 1 and isinstance(events[0], FramingError)
    assert events[0].error.status == 400
    assert (events[0].frame.tid if events[0].frame else None) == tid
    assert parser.feed(RFC_SEND) == []


def test_head_limit():
    parser = FrameParser(max_head=200)
    events = parser.feed(b"MSRP abcd1234 SEND\r\n" + b"X-Long: " + b"a" * 300)
    assert isinstance(events[-1], FramingError) and events[-1].frame is not None
    assert FrameParser(max_head=200).feed(b"M" * 300)[0].error.reason == "start line too long"


def test_huge_body_is_streamed_not_buffered():
    parser = FrameParser()
    head = b"MSRP abcd1234 SEND\r\nContent-Type: application/octet-stream\r\n\r\n"
    events = parser.feed(head)
    largest = 0
    for _ in range(200):
        for event in parser.feed(b"z" * 65536):
            if isinstance(event, BodyPart):
                largest = max(largest, len(event.data))
        assert len(parser._buffer) < 64  # only what might begin the end-line is held
    assert largest <= 65536 and isinstance(events[0], FrameHead)
