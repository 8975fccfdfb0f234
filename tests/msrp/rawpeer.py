"""A raw MSRP peer for the tests: bytes on a socket, framed by hand.

It is what the stack under test talks to when the test needs to send what
our own sessions never send (interrupted chunks, bad framing, slow heads,
wrong paths) or to answer as other clients do (a 200 to the whole
From-Path, as some Blink-era clients do, which makes a relay forward it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from phone.msrp.message import ContinuationFlag, Frame, new_tid
from phone.msrp.parser import BodyPart, FrameEnd, FrameHead, FrameParser, FramingError
from phone.msrp.uri import MsrpUri, format_path

WAIT = 10.0


@dataclass
class RawPeer:
    """One stream; `frames()` gives whole frames as they arrive."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    parser: FrameParser = field(default_factory=FrameParser)
    _ready: list[Frame] = field(default_factory=list)
    _current: Frame | None = None
    _body: bytearray = field(default_factory=bytearray)

    @classmethod
    async def connect(cls, host: str, port: int) -> RawPeer:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_frame(self, timeout: float = WAIT) -> Frame:
        """The next whole frame; `EOFError` if the stream closed first."""
        async with asyncio.timeout(timeout):
            while not self._ready:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("closed")
                for event in self.parser.feed(data):
                    self._take(event)
        return self._ready.pop(0)

    def _take(self, event: object) -> None:
        if isinstance(event, FrameHead):
            self._current, self._body = event.frame, bytearray()
        elif isinstance(event, BodyPart):
            self._body += event.data
        elif isinstance(event, FrameEnd) and self._current is not None:
            self._current.body = bytes(self._body)
            self._ready.append(self._current)
        elif isinstance(event, FramingError):
            raise AssertionError(f"the stack sent a bad frame: {event.error}")

    async def closed(self, timeout: float = WAIT) -> bool:
        """Whether the other end closes the stream within `timeout` (frames are dropped)."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    def close(self) -> None:
        self.writer.close()


def send_frame(
    to_path: tuple[MsrpUri, ...],
    from_path: tuple[MsrpUri, ...],
    body: bytes = b"",
    *,
    message_id: str = "msg00001",
    byte_range: str | None = None,
    content_type: str | None = "text/plain",
    flag: str = "$",
    headers: tuple[tuple[str, str], ...] = (),
    tid: str | None = None,
) -> Frame:
    """A SEND as a peer would write it; Byte-Range defaults to the whole body."""
    fields = [("To-Path", format_path(to_path)), ("From-Path", format_path(from_path))]
    fields += [("Message-ID", message_id)]
    fields += [("Byte-Range", byte_range or f"1-{len(body)}/{len(body)}"), *headers]
    frame = Frame(tid or new_tid(), method="SEND", headers=fields, body=body)
    frame.content_type = content_type
    frame.flag = ContinuationFlag(flag)
    return frame
