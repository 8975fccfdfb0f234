"""The MSRP parser under hypothesis: it never raises, whatever the bytes and
however they are split, and every frame the serializer writes comes back
unchanged. 11,000 cases a run: about 30 s on a loaded 2-core machine."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone.msrp.error import MsrpError
from phone.msrp.message import ContinuationFlag, Frame
from phone.msrp.parser import BodyPart, FrameEnd, FrameHead, FrameParser, FramingError
from tests.msrp.test_message import RFC_OK, RFC_SEND, frames_of

TID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-+%="
TOKENS = [b"\r\n", b"-------", b"a786hjs2", b"$", b"+", b"#", b"MSRP ", b" SEND", b": ", b"\r\n\r\n",
          b"Content-Type: text/plain", b"Byte-Range: 1-*/*", b"\x00", b"\xff"]  # fmt: skip


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@st.composite
def hostile_streams(draw: st.DrawFn) -> list[bytes]:
    """Real frames mutated (flips, cuts, inserted tokens), or random bytes; split anywhere."""
    if draw(st.booleans()):
        data = bytearray(RFC_SEND + RFC_OK)
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(data)))
            action = draw(st.sampled_from(["flip", "cut", "insert"]))
            if action == "flip" and position < len(data):
                data[position] = draw(st.integers(0, 255))
            elif action == "cut":
                del data[position : position + draw(st.integers(1, 40))]
            else:
                data[position:position] = draw(st.sampled_from(TOKENS))
        stream = bytes(data)
    else:
        stream = draw(st.binary(max_size=300))
    return _splits(stream, draw(st.lists(st.integers(0, 1000), max_size=6)))


@settings(max_examples=10000, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_streams())
def test_hostile_input_never_raises(pieces):
    parser = FrameParser(max_head=512)
    in_body = False
    for piece in pieces:
        for event in parser.feed(piece):
            assert isinstance(event, FrameHead | BodyPart | FrameEnd | FramingError)
            if isinstance(event, FramingError):
                assert isinstance(event.error, MsrpError) and event.error.status == 400
                assert parser.feed(RFC_SEND) == []
                return
            if isinstance(event, FrameHead):
                in_body = event.has_body
                frame = event.frame
                for accessor in (
                    "to_path",
                    "from_path",
                    "byte_range",
                    "message_id",
                    "failure_report",
                ):
                    try:
                        getattr(frame, accessor)
                    except MsrpError as exc:
                        assert exc.status == 400
            elif isinstance(event, BodyPart):
                assert in_body


header_values = st.text("ab -$+#:;/é\u20ac\t", max_size=20).map(str.strip)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    tid = draw(st.text(TID_CHARS[:62], min_size=1, max_size=1)) + draw(
        st.text(TID_CHARS, min_size=3, max_size=31)
    )
    names = st.sampled_from(["Message-ID", "Byte-Range", "Status", "X-Unknown", "Use-Path", "a"])
    headers = draw(st.lists(st.tuples(names, header_values), max_size=5))
    if draw(st.booleans()):
        frame = Frame(
            tid,
            status=draw(st.integers(100, 999)),
            comment=draw(st.sampled_from(["OK", "Gone away"])),
            headers=headers,
        )
    else:
        frame = Frame(
            tid,
            method=draw(st.sampled_from(["SEND", "REPORT", "AUTH", "NICKNAME"])),
            headers=headers,
        )
        if draw(st.booleans()):
            frame.content_type = "text/plain"
            frame.body = draw(
                st.binary(max_size=200)
                | st.sampled_from(
                    [b"\r\n-------" + tid.encode(), b"-------" + tid.encode() + b"$\r\n"]
                )
            )
    frame.flag = draw(st.sampled_from(list(ContinuationFlag)))
    return frame


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(frames(), min_size=1, max_size=3), st.lists(st.integers(0, 2000), max_size=5))
def test_serialized_frames_parse_back(written, cuts):
    data = b"".join(frame.encode() for frame in written)
    parsed = frames_of(*_splits(data, cuts))
    assert [f.encode() for f in parsed] == [f.encode() for f in written]
    for before, after in zip(written, parsed, strict=True):
        assert (after.tid, after.method, after.status, after.body, after.flag) == (
            before.tid, before.method, before.status, before.body, before.flag,
        )  # fmt: skip
