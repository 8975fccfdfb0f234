"""Two MSRP sessions over real loopback TCP and TLS (RFC 4975, RFC 4572)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from phone.msrp import session as session_module
from phone.msrp.chunks import FileSink
from phone.msrp.connection import Limits
from phone.msrp.endpoint import MsrpEndpoint
from phone.msrp.error import MsrpClosed, MsrpError, MsrpTimeout
from phone.msrp.message import Frame, ReportMode, Status, new_tid, path_headers, response_to
from phone.msrp.session import MAX_INCOMING, MsrpSession
from phone.msrp.tls import Fingerprint, TlsSettings
from phone.msrp.uri import MsrpUri
from tests.msrp.conftest import make_certificate
from tests.msrp.rawpeer import RawPeer, send_frame

WAIT = 20.0


def run(coroutine: Any) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(WAIT * 3):
            return await coroutine

    return asyncio.run(bounded())


class Inbox:
    """The messages a session received, as an awaitable queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def __call__(self, message: Any) -> None:
        self.queue.put_nowait(message)

    async def get(self) -> Any:
        async with asyncio.timeout(WAIT):
            return await self.queue.get()


@asynccontextmanager
async def pair(
    tls: tuple[TlsSettings, TlsSettings] | None = None,
    *,
    b_options: dict[str, Any] | None = None,
    fingerprint: Fingerprint | None = None,
) -> AsyncIterator[tuple[MsrpSession, MsrpSession, Inbox]]:
    """Alice (active) and Bob (passive, listening) in one session; Bob's inbox."""
    alice = MsrpEndpoint(tls=tls[0] if tls else None)
    bob = MsrpEndpoint(tls=tls[1] if tls else None)
    await alice.listen()
    await bob.listen()
    inbox = Inbox()
    a_uri, b_uri = alice.new_uri(), bob.new_uri()
    a = alice.session(a_uri, (b_uri,), remote_fingerprint=fingerprint)
    b = bob.session(b_uri, (a_uri,), on_message=inbox, **(b_options or {}))
    try:
        await asyncio.gather(a.start(active=True), b.start(active=False))
        yield a, b, inbox
    finally:
        await alice.close()
        await bob.close()


def test_message_and_success_report():
    async def scenario() -> None:
        async with pair() as (a, b, inbox):
            sent = await a.send_message("text/plain", "Grüße".encode(), success_report=True)
            received = await inbox.get()
            assert received.content_type == "text/plain" and received.sink.data == "Grüße".encode()
            assert received.message_id == sent.message_id
            assert await sent.delivered == Status(200, "OK")
            assert a.connection is not None and a.connection.stray_responses == 0

    run(scenario())


def test_one_megabyte_message_in_chunks_both_ways():
    payload = os.urandom(1 << 20)

    async def scenario() -> None:
        async with pair() as (a, b, inbox):
            a.chunk_size = 2048  # 512 chunks
            await a.send_message("application/octet-stream", payload)
            assert (await inbox.get()).sink.data == payload
            a_inbox = Inbox()
            a.on_message = a_inbox
            await b.send_message("application/octet-stream", payload[::-1])
            assert (await a_inbox.get()).sink.data == payload[::-1]

    run(scenario())


def test_ten_megabyte_file_streamed_to_disk(tmp_path: Path):
    source = tmp_path / "photo.bin"
    source.write_bytes(os.urandom(10 << 20))
    target = tmp_path / "received.bin"
    sinks: list[FileSink] = []

    def file_sink(_frame: Any) -> FileSink:
        sinks.append(FileSink(target, limit=20 << 20))
        return sinks[-1]

    async def scenario() -> None:
        options = {"sink_factory": file_sink, "max_message_bytes": 20 << 20}
        async with pair(b_options=options) as (a, b, inbox):
            sent = await a.send_file(source, "application/octet-stream", success_report=True)
            received = await inbox.get()
            await sent.delivered
            assert received.sink is sinks[0] and received.total == 10 << 20

    run(scenario())
    assert sinks[0].complete and target.stat().st_size == 10 << 20
    assert sinks[0].sha1() == hashlib.sha1(source.read_bytes()).hexdigest()


def test_chunk_holding_its_end_line_goes_under_another_tid(monkeypatch):
    tids = iter(["binding001", "collide001", "fresh00001"])
    real = session_module.new_tid
    monkeypatch.setattr(session_module, "new_tid", lambda: next(tids, None) or real())
    body = b"before\r\n-------collide001$\r\nafter"

    async def scenario() -> None:
        async with pair() as (a, b, inbox):
            await a.send_message("text/plain", body)
            assert (await inbox.get()).sink.data == body

    run(scenario())
    assert next(tids, "used") == "used"


def test_sessions_to_one_peer_share_a_connection():
    async def scenario() -> None:
        alice, bob = MsrpEndpoint(), MsrpEndpoint()
        await alice.listen()
        await bob.listen()
        try:
            inboxes = [Inbox(), Inbox()]
            sessions = []
            for inbox in inboxes:
                a_uri, b_uri = alice.new_uri(), bob.new_uri()
                a = alice.session(a_uri, (b_uri,))
                b = bob.session(b_uri, (a_uri,), on_message=inbox)
                await asyncio.gather(a.start(active=True), b.start(active=False))
                sessions.append(a)
            assert sessions[0].connection is sessions[1].connection  # RFC 4975 section 8.1
            for index, session in enumerate(sessions):
                await session.send_message("text/plain", f"to {index}".encode())
            assert [(await i.get()).sink.data for i in inboxes] == [b"to 0", b"to 1"]
            sessions[0].close()
            await sessions[1].send_message("text/plain", b"still here")
            assert (await inboxes[1].get()).sink.data == b"still here"
        finally:
            await alice.close()
            await bob.close()

    run(scenario())


def test_tls_with_the_fingerprint_from_sdp(certificates):
    alice_tls, bob_tls = certificates

    async def scenario() -> None:
        async with pair(certificates, fingerprint=bob_tls.fingerprint()) as (a, b, inbox):
            assert a.local_uri.secure and a.connection is not None and a.connection.secure
            await a.send_message("text/plain", b"over TLS")
            assert (await inbox.get()).sink.data == b"over TLS"

    run(scenario())


def test_tls_with_another_certificate_is_refused(certificates):
    alice_tls, _ = certificates

    async def scenario() -> None:
        with pytest.raises(MsrpError) as caught:
            async with pair(certificates, fingerprint=alice_tls.fingerprint("sha-1")):
                pass
        assert caught.value.status == 403

    run(scenario())


def test_tls_without_fingerprint_checks_ca_and_host(tmp_path: Path):
    """A relay's certificate, offered without a fingerprint, must verify."""
    relay_tls = make_certificate(tmp_path, "relay", "IP:127.0.0.1")
    trusting = make_certificate(tmp_path, "alice")
    trusting = TlsSettings(trusting.certfile, trusting.keyfile, cafile=relay_tls.certfile)

    async def scenario() -> None:
        relay = MsrpEndpoint(tls=relay_tls)
        await relay.listen()
        uri = relay.new_uri()
        try:
            for settings, refused in [(None, True), (trusting, False)]:
                client = MsrpEndpoint(tls=settings)
                try:
                    if refused:
                        with pytest.raises(MsrpError) as caught:
                            await client.connect(uri)
                        assert caught.value.status == 403
                    else:
                        assert (await client.connect(uri)).secure
                finally:
                    await client.close()
        finally:
            await relay.close()

    run(scenario())


def test_a_connection_checked_by_fingerprint_only_is_not_reused_without_one(certificates):
    alice_tls, bob_tls = certificates

    async def scenario() -> None:
        async with pair(certificates, fingerprint=bob_tls.fingerprint()) as (a, b, inbox):
            uri = b.local_uri
            assert await a.endpoint.connect(uri, fingerprint=bob_tls.fingerprint()) is a.connection
            with pytest.raises(MsrpError) as caught:
                await a.endpoint.connect(
                    uri
                )  # a new connection, which bob's self-signed cert fails
            assert caught.value.status == 403
            with pytest.raises(MsrpError):
                await a.endpoint.connect(uri, fingerprint=alice_tls.fingerprint())
            assert not a.closed  # the shared connection stays for the session on it

    run(scenario())


def test_fingerprint_attribute_format(certificates):
    alice_tls, _ = certificates
    ours = alice_tls.fingerprint()
    text = str(ours)
    assert text.startswith("SHA-256 ") and len(text.split()[1]) == 32 * 3 - 1
    assert Fingerprint.parse(text) == ours
    with pytest.raises(MsrpError):
        Fingerprint.parse("md5 AB:CD")


@asynccontextmanager
async def raw_to_bob(
    limits: Limits | None = None, **options: Any
) -> AsyncIterator[tuple[RawPeer, MsrpSession, Inbox, Any]]:
    """Bob's passive session, and a raw peer connected to him as the session's Alice."""
    bob = MsrpEndpoint(limits=limits)
    await bob.listen()
    inbox = Inbox()
    alice_uri = bob.new_uri(port=9)
    b = bob.session(bob.new_uri(), (alice_uri,), on_message=inbox, **options)
    peer = await RawPeer.connect("127.0.0.1", bob.port)
    try:
        yield peer, b, inbox, alice_uri
    finally:
        peer.close()
        await bob.close()


def test_interrupted_chunk_is_resumed():
    text = b"The first part, interrupted here | and the rest, resumed in a new chunk."
    cut = text.index(b"|")

    async def scenario() -> None:
        async with raw_to_bob() as (peer, b, inbox, alice):
            to, frm = b.local_path, (alice,)
            # The sender declared the whole range, then interrupted the chunk with '+'.
            first = send_frame(
                to, frm, text[:cut], byte_range=f"1-{len(text)}/{len(text)}", flag="+"
            )
            rest = send_frame(to, frm, text[cut:], byte_range=f"{cut + 1}-{len(text)}/{len(text)}")
            await peer.write(first.encode())
            assert (await peer.next_frame()).status == 200
            await peer.write(rest.encode())
            assert (await peer.next_frame()).status == 200
            assert (await inbox.get()).sink.data == text

    run(scenario())


def test_aborted_message_is_dropped_and_the_session_goes_on():
    async def scenario() -> None:
        async with raw_to_bob() as (peer, b, inbox, alice):
            to, frm = b.local_path, (alice,)
            await peer.write(send_frame(to, frm, b"half", byte_range="1-8/8", flag="#").encode())
            assert (await peer.next_frame()).status == 200
            await peer.write(send_frame(to, frm, b"whole", message_id="msg00002").encode())
            assert (await peer.next_frame()).status == 200
            assert (await inbox.get()).sink.data == b"whole"
            assert b._incoming == {}

    run(scenario())


def test_messages_in_progress_are_bounded():
    async def scenario() -> None:
        async with raw_to_bob() as (peer, b, inbox, alice):
            statuses = []
            for index in range(MAX_INCOMING + 1):
                chunk = send_frame(
                    b.local_path,
                    (alice,),
                    b"a",
                    message_id=f"open{index:04d}",
                    byte_range="1-1/2",
                    flag="+",
                )
                await peer.write(chunk.encode())
                statuses.append((await peer.next_frame()).status)
            assert statuses == [200] * MAX_INCOMING + [413]

    run(scenario())


def test_wrong_to_path_gets_481_and_the_connection_stays():
    async def scenario() -> None:
        async with raw_to_bob() as (peer, b, inbox, alice):
            wrong = MsrpUri(b.local_uri.host, b.local_uri.port, "nosuchsession")
            await peer.write(send_frame((wrong,), (alice,), b"hello?").encode())
            assert (await peer.next_frame()).status == 481
            stranger = MsrpUri(alice.host, alice.port, "someoneelse")
            await peer.write(send_frame(b.local_path, (stranger,), b"hello?").encode())
            assert (await peer.next_frame()).status == 481
            await peer.write(send_frame(b.local_path, (alice,), b"right").encode())
            assert (await peer.next_frame()).status == 200
            assert (await inbox.get()).sink.data == b"right"

    run(scenario())


@pytest.mark.parametrize(
    ("frame_options", "status"),
    [
        ({"byte_range": "1-10/99999999999"}, 413),  # declared size over the limit
        ({"content_type": "application/x-virus"}, 415),
        ({"byte_range": "1-2/10"}, 400),  # more body than its Byte-Range says
        ({"message_id": "msg00001", "content_type": None}, 400),  # body without Content-Type
    ],
)
def test_refused_chunks_get_their_status(frame_options, status):
    async def scenario() -> None:
        async with raw_to_bob(accept_types=("text/plain",), max_message_bytes=1000) as (
            peer,
            b,
            inbox,
            alice,
        ):
            frame = send_frame(b.local_path, (alice,), b"0123456789", **frame_options)
            if frame.content_type is None:
                data = frame.head() + b"\r\n0123456789\r\n" + frame.end_line()
            else:
                data = frame.encode()
            await peer.write(data)
            assert (await peer.next_frame()).status == status
            await peer.write(
                send_frame(b.local_path, (alice,), b"fine", message_id="msg00009").encode()
            )
            assert (await peer.next_frame()).status == 200
            assert (await inbox.get()).sink.data == b"fine"

    run(scenario())


def test_bad_framing_closes_that_connection_only(caplog):
    async def scenario() -> None:
        bob = MsrpEndpoint()
        await bob.listen()
        alice = MsrpEndpoint()
        await alice.listen()
        try:
            inbox = Inbox()
            a_uri, b_uri = alice.new_uri(), bob.new_uri()
            a = alice.session(a_uri, (b_uri,))
            b = bob.session(b_uri, (a_uri,), on_message=inbox)
            await asyncio.gather(a.start(active=True), b.start(active=False))
            hostile = await RawPeer.connect("127.0.0.1", bob.port)
            await hostile.write(b"MSRP abcd1234 SEND\r\nTo-Path: " + str(b_uri).encode() + b"\r\n")
            await hostile.write(b"From-Path: msrp://x:1/y;tcp\r\n-------wrongtid$\r\n")
            answer = await hostile.next_frame()
            assert answer.status == 400 and await hostile.closed()
            garbage = await RawPeer.connect("127.0.0.1", bob.port)
            await garbage.write(b"GET / HTTP/1.1\r\n\r\n")
            assert await garbage.closed()
            await a.send_message("text/plain", b"unaffected")
            assert (await inbox.get()).sink.data == b"unaffected"
        finally:
            await alice.close()
            await bob.close()

    with caplog.at_level(logging.WARNING, logger="phone.msrp"):
        run(scenario())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("bad framing" in w for w in warnings)


def test_slow_peer_is_closed_with_a_status():
    limits = Limits(head_timeout=0.5, idle_timeout=0.5, bind_timeout=0.5)

    async def scenario() -> None:
        async with raw_to_bob(limits) as (peer, b, inbox, alice):
            frame = send_frame(b.local_path, (alice,), b"x" * 100)
            data = frame.encode()
            # The head arrives whole, then the body stalls.
            await peer.write(data[: len(frame.head()) + 10])
            answer = await peer.next_frame()
            assert answer.status == 400 and await peer.closed()
            assert b.closed and "slow peer" in b.close_reason
            slowloris = await RawPeer.connect("127.0.0.1", b.endpoint.port)
            with contextlib.suppress(ConnectionError):
                for byte in data[:30]:  # one byte at a time, never finishing the head
                    await slowloris.write(bytes([byte]))
                    await asyncio.sleep(0.05)
            assert await slowloris.closed()
            idle = await RawPeer.connect("127.0.0.1", b.endpoint.port)
            assert await idle.closed()  # never says which session it is for

    run(scenario())


def test_non_send_requests():
    async def scenario() -> None:
        async with raw_to_bob() as (peer, b, inbox, alice):
            to, frm = b.local_path, (alice,)
            nickname = send_frame(to, frm, b"", content_type=None)
            nickname.method = "NICKNAME"
            await peer.write(nickname.encode())
            assert (await peer.next_frame()).status == 501
            big = send_frame(to, frm, b"r" * 20000, content_type="text/plain")
            big.method = "REPORT"
            await peer.write(big.encode())
            silent = send_frame(
                to, frm, b"", content_type=None, headers=(("Failure-Report", "no"),)
            )
            await peer.write(silent.encode())  # an empty SEND asking for no response
            await peer.write(send_frame(to, frm, b"after").encode())
            answer = await peer.next_frame()
            assert answer.status == 200 and answer.tid != silent.tid  # REPORTs get no response
            assert (await inbox.get()).sink.data == b"after"

    run(scenario())


def test_unanswered_transaction_times_out():
    async def scenario() -> None:
        server_side: list[RawPeer] = []

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server_side.append(RawPeer(reader, writer))

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        alice = MsrpEndpoint(limits=Limits(transaction_timeout=0.3))
        await alice.listen()
        try:
            silent = alice.new_uri(port=port)
            a = alice.session(alice.new_uri(), (silent,))
            with pytest.raises(MsrpTimeout):
                await a.start(active=True)
            assert a.closed
            peer = alice.session(alice.new_uri(), (silent,))
            with pytest.raises(MsrpError) as caught:
                await peer.start(active=False, timeout=0.3)
            assert caught.value.status == 408
            with pytest.raises(MsrpClosed):
                await peer.send_message("text/plain", b"nobody")
        finally:
            await alice.close()
            server.close()

    run(scenario())


def test_failure_report_fails_delivered():
    async def scenario() -> None:
        accepted: asyncio.Queue[RawPeer] = asyncio.Queue()
        server = await asyncio.start_server(
            lambda r, w: accepted.put_nowait(RawPeer(r, w)), "127.0.0.1", 0
        )
        alice = MsrpEndpoint()
        await alice.listen()
        bob_uri = MsrpUri("127.0.0.1", server.sockets[0].getsockname()[1], "rawbob01")
        try:
            a = alice.session(alice.new_uri(), (bob_uri,))
            starting = asyncio.create_task(a.start(active=True))
            bob = await accepted.get()
            await bob.write(response_to(await bob.next_frame(), 200).encode())
            await starting
            sending = asyncio.create_task(
                a.send_message("text/plain", b"lost", success_report=True)
            )
            send = await bob.next_frame()
            await bob.write(response_to(send, 200).encode())
            sent = await sending
            headers = [*path_headers((a.local_uri,), (bob_uri,)), ("Message-ID", sent.message_id)]
            headers += [("Byte-Range", "1-4/4"), ("Status", "000 481 Session gone")]
            await bob.write(Frame(new_tid(), method="REPORT", headers=headers).encode())
            with pytest.raises(MsrpError) as caught:
                await sent.delivered
            assert caught.value.status == 481
        finally:
            await alice.close()
            server.close()

    run(scenario())


def test_failure_report_no_needs_no_response():
    async def scenario() -> None:
        async with pair() as (a, b, inbox):
            await a.send_message("text/plain", b"fire and forget", failure_report=ReportMode.NO)
            assert (await inbox.get()).sink.data == b"fire and forget"

    run(scenario())
