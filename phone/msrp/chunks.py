"""Messages in chunks (RFC 4975 sections 5.1 and 7.1.1): cutting ours, and
putting the peer's back together by Message-ID.

A message larger than the chunk size goes as several SENDs with one
Message-ID, each with its `Byte-Range`; `+` says more follow, `$` ends the
message and `#` abandons it. A sender may also interrupt a chunk mid-body
and send the rest in a new chunk, so the receiver trusts the bytes it got,
not the end a chunk declared. Bytes go to a `MessageSink` as they arrive:
`MemorySink` for chat text (bounded), `FileSink` for a file transfer, which
writes at each chunk's offset and never holds the file in memory.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from phone.msrp.error import MsrpError
from phone.msrp.message import ByteRange, ContinuationFlag, Frame

log = logging.getLogger(__name__)

DIRECT_CHUNK_SIZE = 65536
"""Chunk size over a direct connection: big chunks keep file transfers fast."""
RELAY_CHUNK_SIZE = 4096
"""Chunk size through relays: Kamailio 5.6 drops frames of 16 kB and more, and
RFC 4975 section 7.1.1 suggests 2048 when the path is unknown."""


class MessageSink(Protocol):
    """Where the bytes of one incoming message go."""

    def write(self, offset: int, data: bytes) -> None:
        """`data` at byte `offset` (0-based); may raise `MsrpError` (413)."""

    def close(self, complete: bool) -> None:
        """The message is whole (`complete`) or abandoned; release resources."""


class MemorySink:
    """Keeps the message in memory, up to `limit` bytes (chat text)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data = bytearray()
        self.complete = False

    def write(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        if end > self.limit:
            raise MsrpError(413, f"message over the {self.limit}-byte limit")
        if end > len(self._data):
            self._data.extend(bytes(end - len(self._data)))
        self._data[offset:end] = data

    def close(self, complete: bool) -> None:
        self.complete = complete
        if not complete:
            self._data.clear()

    @property
    def data(self) -> bytes:
        return bytes(self._data)


class FileSink:
    """Writes the message to `path` at each chunk's offset; removed when abandoned.

    The SHA-1 (RFC 5547 `hash:sha-1`) is computed as bytes arrive in order,
    and by reading the file back only if they came out of order.
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.complete = False
        self._file: BinaryIO | None = None
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._hashed = 0  # bytes fed to _sha1, in order
        self._in_order = True

    def write(self, offset: int, data: bytes) -> None:
        if offset + len(data) > self.limit:
            raise MsrpError(413, f"file over the {self.limit}-byte limit")
        if self._file is None:
            self._file = open(self.path, "wb")  # noqa: SIM115 - held across chunks
        os.pwrite(self._file.fileno(), data, offset)
        if self._in_order and offset == self._hashed:
            self._sha1.update(data)
            self._hashed += len(data)
        elif offset + len(data) > self._hashed:
            self._in_order = False

    def close(self, complete: bool) -> None:
        if self._file is None and complete:
            self.path.write_bytes(b"")  # an empty file is still a file
        if self._file is not None:
            self._file.close()
            self._file = None
        self.complete = complete
        if not complete:
            self.path.unlink(missing_ok=True)

    def sha1(self) -> str:
        """The file's SHA-1 as hex, once complete."""
        if not self._in_order:
            digest = hashlib.sha1(usedforsecurity=False)
            with open(self.path, "rb") as source:
                for block in iter(lambda: source.read(1 << 16), b""):
                    digest.update(block)
            return digest.hexdigest()
        return self._sha1.hexdigest()


@dataclass
class IncomingMessage:
    """One message being received: its chunks' bytes so far, by Message-ID."""

    message_id: str
    content_type: str | None
    sink: MessageSink
    total: int | None = None
    ended: bool = False  # a `$` chunk arrived
    first: Frame | None = field(default=None, repr=False)  # the first chunk's head
    _ranges: list[list[int]] = field(default_factory=list)  # [start, end) received

    def write(self, offset: int, data: bytes) -> None:
        if not data:
            return
        if self.total is not None and offset + len(data) > self.total:
            raise MsrpError(400, "chunk beyond the message's total size")
        self.sink.write(offset, data)
        self._add(offset, offset + len(data))

    def _add(self, start: int, end: int) -> None:
        ranges = self._ranges
        if ranges and ranges[-1][0] <= start <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], end)
        else:
            ranges.append([start, end])
            ranges.sort()
        merged: list[list[int]] = []
        for r in ranges:
            if merged and r[0] <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], r[1])
            else:
                merged.append(r)
        self._ranges = merged

    @property
    def received(self) -> int:
        """Bytes received from the start without a gap."""
        return self._ranges[0][1] if self._ranges and self._ranges[0][0] == 0 else 0

    @property
    def complete(self) -> bool:
        size = self.total if self.total is not None else self.received
        return self.ended and self.received == size and len(self._ranges) <= 1


@dataclass
class ChunkState:
    """The chunk being received: where its next byte goes and where it may end."""

    message: IncomingMessage
    position: int  # 0-based offset of the next body byte
    limit: int | None  # 0-based end (exclusive) the Byte-Range declared
    error: MsrpError | None = None

    def data(self, data: bytes) -> None:
        if self.error is not None:
            return
        if self.limit is not None and self.position + len(data) > self.limit:
            self.error = MsrpError(400, "chunk longer than its Byte-Range")
            return
        try:
            self.message.write(self.position, data)
        except MsrpError as exc:
            self.error = exc
            return
        self.position += len(data)

    def end(self, flag: ContinuationFlag) -> None:
        if flag is ContinuationFlag.END and self.error is None:
            self.message.ended = True
            if self.message.total is None:
                self.message.total = self.position


def chunk_ranges(size: int, chunk_size: int) -> Iterator[tuple[ByteRange, ContinuationFlag]]:
    """The Byte-Ranges and flags a message of `size` bytes is sent as."""
    if chunk_size < 1:
        raise ValueError("chunk size must be positive")
    start = 0
    while True:
        end = min(size, start + chunk_size)
        flag = ContinuationFlag.END if end >= size else ContinuationFlag.MORE
        yield ByteRange(start + 1, end, size), flag
        if flag is ContinuationFlag.END:
            return
        start = end
