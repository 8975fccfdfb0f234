"""Chunking and reassembly (RFC 4975 sections 5.1, 7.1.1), and the sinks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from phone.msrp.chunks import ChunkState, FileSink, IncomingMessage, MemorySink, chunk_ranges
from phone.msrp.error import MsrpError
from phone.msrp.message import ByteRange, ContinuationFlag


def test_chunk_ranges():
    assert list(chunk_ranges(5000, 2048)) == [
        (ByteRange(1, 2048, 5000), ContinuationFlag.MORE),
        (ByteRange(2049, 4096, 5000), ContinuationFlag.MORE),
        (ByteRange(4097, 5000, 5000), ContinuationFlag.END),
    ]
    assert list(chunk_ranges(0, 2048)) == [(ByteRange(1, 0, 0), ContinuationFlag.END)]
    assert list(chunk_ranges(4096, 2048))[-1] == (ByteRange(2049, 4096, 4096), ContinuationFlag.END)
    with pytest.raises(ValueError):
        list(chunk_ranges(10, 0))


def receive(
    message: IncomingMessage, start: int, data: bytes, flag: str, end: int | None = None
) -> ChunkState:
    state = ChunkState(message, start - 1, end)
    state.data(data)
    state.end(ContinuationFlag(flag))
    return state


def test_out_of_order_and_interrupted_chunks_reassemble():
    message = IncomingMessage("m1", "text/plain", MemorySink(100), total=10)
    receive(message, 6, b"fghij", "$")
    assert not message.complete  # bytes 1-5 are missing
    receive(message, 1, b"abc", "+", end=5)  # interrupted after 3 of 5 bytes
    assert message.received == 3 and not message.complete
    receive(message, 4, b"de", "+")
    assert message.complete and message.sink.data == b"abcdefghij"


def test_unknown_total_ends_with_the_last_chunk():
    message = IncomingMessage("m1", "text/plain", MemorySink(100))
    receive(message, 1, b"abc", "+")
    receive(message, 4, b"de", "$")
    assert message.total == 5 and message.complete


def test_chunk_errors():
    message = IncomingMessage("m1", "text/plain", MemorySink(8), total=20)
    longer = receive(message, 1, b"abcdef", "+", end=3)
    assert longer.error is not None and longer.error.status == 400
    too_big = receive(message, 1, b"0123456789", "+")
    assert too_big.error is not None and too_big.error.status == 413
    beyond = IncomingMessage("m2", None, MemorySink(100), total=4)
    assert receive(beyond, 3, b"xyz", "$").error.status == 400
    assert not beyond.ended


def test_memory_sink_limit():
    sink = MemorySink(4)
    sink.write(2, b"cd")
    assert sink.data == b"\0\0cd"
    with pytest.raises(MsrpError):
        sink.write(3, b"xy")
    sink.close(False)
    assert sink.data == b""


def test_file_sink(tmp_path: Path):
    data = bytes(range(256)) * 10
    in_order = FileSink(tmp_path / "a", limit=len(data))
    for offset in range(0, len(data), 1000):
        in_order.write(offset, data[offset : offset + 1000])
    in_order.close(True)
    assert (tmp_path / "a").read_bytes() == data
    assert in_order.sha1() == hashlib.sha1(data).hexdigest()

    shuffled = FileSink(tmp_path / "b", limit=len(data))
    shuffled.write(1000, data[1000:])
    shuffled.write(0, data[:1000])
    shuffled.close(True)
    assert shuffled.sha1() == hashlib.sha1(data).hexdigest()

    aborted = FileSink(tmp_path / "c", limit=10)
    aborted.write(0, b"part")
    with pytest.raises(MsrpError):
        aborted.write(8, b"over")
    aborted.close(False)
    assert not (tmp_path / "c").exists()

    empty = FileSink(tmp_path / "d", limit=10)
    empty.close(True)
    assert (tmp_path / "d").read_bytes() == b""
