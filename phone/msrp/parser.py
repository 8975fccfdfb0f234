"""The streaming MSRP parser: bytes in, frame events out (RFC 4975 section 9).

Network reads split frames anywhere, and a chunk may be megabytes long, so
the parser never waits for a whole body: it yields the head (`FrameHead`),
then the body in pieces (`BodyPart`), then the end (`FrameEnd` with its
flag). A body ends only at CRLF, `-------`, its own transaction id, a flag
and CRLF; anything else that looks like an end-line is body. Bytes that
could still begin the end-line are held back until the next read decides.

A defect in the framing itself (a bad start line, a head over the limit, a
wrong end-line) leaves no way to find the next frame: the parser yields one
`FramingError` carrying the status and, when known, the transaction id, and
ignores everything after it. It never raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from phone.msrp.error import MsrpError
from phone.msrp.message import FLAGS, HEADER_NAME, METHOD, TID, ContinuationFlag, Frame

MAX_HEAD = 16384
"""Largest start line plus headers accepted, in bytes."""


@dataclass
class FrameHead:
    """A frame's start line and headers; its body follows as `BodyPart`s."""

    frame: Frame
    has_body: bool


@dataclass
class BodyPart:
    data: bytes


@dataclass
class FrameEnd:
    flag: ContinuationFlag


@dataclass
class FramingError:
    """The stream cannot be parsed further; `frame` holds what was read of the
    frame's head (start line and headers) when the start line was valid."""

    error: MsrpError
    frame: Frame | None


ParseEvent = FrameHead | BodyPart | FrameEnd | FramingError


class FrameParser:
    """Feed it bytes with `feed`; it returns the events they complete."""

    def __init__(self, max_head: int = MAX_HEAD) -> None:
        self.max_head = max_head
        self._buffer = bytearray()
        self._frame: Frame | None = None  # the frame whose body is being read
        self._marker = b""
        self._failed = False
        self._head: Frame | None = None  # the frame whose head is being read
        self._position = 0  # where the head's next line starts in the buffer
        self._scan = 0  # where to look for that line's CRLF

    @property
    def in_frame(self) -> bool:
        """Whether a frame has begun and not ended (for the slow-peer timers)."""
        return bool(self._buffer) or self._frame is not None

    @property
    def reading_head(self) -> bool:
        return self._frame is None and bool(self._buffer)

    def feed(self, data: bytes) -> list[ParseEvent]:
        if self._failed:
            return []
        self._buffer += data
        events: list[ParseEvent] = []
        while not self._failed:
            before = len(events)
            if self._frame is None:
                self._read_head(events)
            else:
                self._read_body(events)
            if len(events) == before:
                break
        return events

    def _fail(
        self, events: list[ParseEvent], status: int, reason: str, frame: Frame | None
    ) -> None:
        events.append(FramingError(MsrpError(status, reason), frame))
        self._failed = True
        self._buffer.clear()

    def _read_head(self, events: list[ParseEvent]) -> None:
        """Parse the head line by line as lines complete, remembering where it
        stopped, so a head that trickles in byte by byte costs linear time."""
        buffer = self._buffer
        while True:
            eol = buffer.find(b"\r\n", self._scan)
            if eol < 0 or eol > self.max_head:
                self._scan = max(self._position, len(buffer) - 1)
                if len(buffer) > self.max_head:
                    reason = "start line too long" if self._head is None else "frame head too large"
                    self._fail(events, 400, reason, self._head)
                return
            line = bytes(buffer[self._position : eol])
            self._position = self._scan = eol + 2
            if self._head is None:
                try:
                    self._head = _start_line(line)
                except MsrpError as exc:
                    self._fail(events, exc.status, exc.reason, None)
                    return
                continue
            frame = self._head
            if line.startswith(b"-------"):
                end_line = b"-------" + frame.tid.encode()
                if len(line) != len(end_line) + 1 or not line.startswith(end_line):
                    self._fail(events, 400, "bad end-line", frame)
                elif line[-1:] not in FLAGS:
                    self._fail(events, 400, "bad continuation flag", frame)
                else:
                    frame.flag = ContinuationFlag(line[-1:].decode())
                    self._next_frame()
                    events += [FrameHead(frame, False), FrameEnd(frame.flag)]
                return
            if not line:
                self._next_frame()
                self._frame = frame
                self._marker = b"\r\n-------" + frame.tid.encode()
                events.append(FrameHead(frame, True))
                return
            try:
                _add_header(frame, line)
            except MsrpError as exc:
                self._fail(events, exc.status, exc.reason, frame)
                return

    def _next_frame(self) -> None:
        """Drop the head just read from the buffer; what follows is body or the next frame."""
        del self._buffer[: self._position]
        self._head, self._position, self._scan = None, 0, 0

    def _read_body(self, events: list[ParseEvent]) -> None:
        buffer, marker = self._buffer, self._marker
        assert self._frame is not None
        # The body of an empty section starts right at the end-line's CRLF.
        found = buffer.find(marker)
        while found >= 0:
            tail = buffer[found + len(marker) : found + len(marker) + 3]
            if len(tail) < 3:
                break  # flag and CRLF not here yet
            if tail[:1] in FLAGS and tail[1:] == b"\r\n":
                if found:
                    events.append(BodyPart(bytes(buffer[:found])))
                flag = ContinuationFlag(tail[:1].decode())
                self._frame.flag = flag
                del buffer[: found + len(marker) + 3]
                self._frame = None
                events.append(FrameEnd(flag))
                return
            found = buffer.find(marker, found + 1)
        # Everything before a possible start of the end-line is body.
        safe = found if found >= 0 else max(0, len(buffer) - len(marker) + 1)
        if safe:
            events.append(BodyPart(bytes(buffer[:safe])))
            del buffer[:safe]


def _start_line(line: bytes) -> Frame:
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise MsrpError(400, "start line is not ASCII") from None
    parts = text.split(" ", 3)
    if len(parts) < 3 or parts[0] != "MSRP" or not TID.fullmatch(parts[1]):
        raise MsrpError(400, f"bad start line {text[:60]!r}")
    if METHOD.fullmatch(parts[2]):
        if len(parts) > 3:
            raise MsrpError(400, f"bad request line {text[:60]!r}")
        return Frame(parts[1], method=parts[2])
    if len(parts[2]) == 3 and parts[2].isdigit():
        return Frame(parts[1], status=int(parts[2]), comment=parts[3] if len(parts) > 3 else None)
    raise MsrpError(400, f"bad start line {text[:60]!r}")


def _add_header(frame: Frame, line: bytes) -> None:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise MsrpError(400, "header is not UTF-8") from None
    name, colon, value = text.partition(":")
    if not colon or not HEADER_NAME.fullmatch(name):
        raise MsrpError(400, f"bad header line {text[:60]!r}")
    if any(ord(c) < 32 and c != "\t" for c in value):
        raise MsrpError(400, f"control character in {name}")
    if name.lower() == "content-type":
        frame.content_type = value.strip()
    else:
        frame.headers.append((name, value.strip()))
