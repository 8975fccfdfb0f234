"""A TCP message longer than pjsip's receive buffer (PJSIP_MAX_PKT_LEN): the
connection is closed, so the sender's next request goes over a new one and is
answered, instead of being swallowed by the rest of the long message."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from phone.sip.oversize import Oversized
from phone.sip.rawsip import RawSip

OVER_ROOM = 2000  # bytes past the receive buffer the self-test measured


def options(port: int, call_id: str, body: bytes = b"") -> bytes:
    head = (
        f"OPTIONS sip:me@127.0.0.1:{port};transport=tcp SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
        f"From: <sip:tester@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:me@127.0.0.1:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        + ("Content-Type: text/plain\r\n" if body else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_until(pj_endpoint: Any, conn: socket.socket, done: Any, timeout: float = 5.0) -> bytes:
    """Pump pjsua and read `conn` until `done(data, eof)`; the data read."""
    data = b""
    eof = False
    deadline = time.monotonic() + timeout
    while not done(data, eof):
        if time.monotonic() > deadline:
            raise TimeoutError(f"read {data[:200]!r}, eof={eof}")
        pj_endpoint.libHandleEvents(5)
        try:
            chunk = conn.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionResetError:
            chunk = b""
        data += chunk
        eof = eof or not chunk
    return data


@pytest.fixture
def dropped(raw_sip: RawSip) -> Iterator[list[Oversized]]:
    seen: list[Oversized] = []
    raw_sip.oversize.on_oversize(seen.append)
    yield seen
    raw_sip.oversize.remove_handler(seen.append)


def connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setblocking(False)
    return conn


def overflow(raw_sip: RawSip, pj_endpoint: Any, port: int, then: str) -> tuple[str, bytes]:
    """Send one request too long for pjsip's buffer, and the request `then` (a
    Call-ID) right behind it on the same connection; its Call-ID and what came back."""
    long_id = secrets.token_hex(8)
    conn = connect(port)
    try:
        conn.setblocking(True)
        room = raw_sip.offsets.rx_packet_room
        assert room is not None, "the layout self-test did not measure the receive buffer"
        conn.sendall(options(port, long_id, b"x" * (room + OVER_ROOM)) + options(port, then))
        conn.setblocking(False)
        return long_id, read_until(pj_endpoint, conn, lambda data, eof: eof)
    finally:
        conn.close()


def test_long_message_closes_the_connection_and_a_new_one_is_answered(
    raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any, dropped: list[Oversized]
) -> None:
    port = sip_transports.tcp_port
    small_id = secrets.token_hex(8)
    long_id, data = overflow(raw_sip, pj_endpoint, port, then=small_id)
    assert small_id.encode() not in data, "pjsip answered the request after the long one"
    assert [(d.call_id, d.closed) for d in dropped] == [(long_id, True)]
    assert dropped[0].start_line.startswith("OPTIONS sip:me@")

    fresh = connect(port)
    try:
        fresh.setblocking(True)
        fresh.sendall(options(port, small_id))
        fresh.setblocking(False)
        answer = read_until(pj_endpoint, fresh, lambda data, eof: b"\r\n\r\n" in data or eof)
    finally:
        fresh.close()
    assert answer.startswith(b"SIP/2.0 200"), answer[:80]
    assert small_id.encode() in answer


def test_a_second_hook_on_the_endpoint_takes_nothing_from_the_first(
    raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any, dropped: list[Oversized]
) -> None:
    """pjsip keeps one dropped-data callback per transport manager: a second
    hook (as `test_rawsip` builds) shares it while it lives, and closing it
    leaves it to the first."""
    port = sip_transports.tcp_port
    second = RawSip(pj_endpoint)
    seen_by_second: list[Oversized] = []
    second.oversize.on_oversize(seen_by_second.append)
    try:
        both, _ = overflow(raw_sip, pj_endpoint, port, then=secrets.token_hex(8))
    finally:
        second.close()
    first_only, _ = overflow(raw_sip, pj_endpoint, port, then=secrets.token_hex(8))
    assert [(d.call_id, d.closed) for d in seen_by_second] == [(both, True)]
    assert [(d.call_id, d.closed) for d in dropped] == [(both, True), (first_only, True)]
