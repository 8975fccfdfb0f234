"""An MSRP session (RFC 4975): messages both ways between our URI and the
peer's path, over a connection that one side opens (`a=setup`, RFC 6135).

The active side connects to the first hop of the peer's path (or uses its
relay's connection, RFC 4976) and sends an empty SEND at once, so the
passive side can bind that connection to the session (section 5.4). Our
messages go in chunks with one Message-ID; each chunk is a transaction
that a 200 ends, or a 408 after 30 s. Incoming chunks are checked (content
type, size, Byte-Range), written to a sink as they arrive and, once a
message is whole, given to `on_message`; a sender asking `Success-Report:
yes` gets a REPORT (section 7.1.2). REPORTs for our messages complete their
`delivered` future.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from phone.msrp.chunks import (
    DIRECT_CHUNK_SIZE,
    RELAY_CHUNK_SIZE,
    ChunkState,
    IncomingMessage,
    MemorySink,
    MessageSink,
    chunk_ranges,
)
from phone.msrp.error import MsrpClosed, MsrpError
from phone.msrp.message import (
    ByteRange,
    ContinuationFlag,
    Frame,
    ReportMode,
    Status,
    new_message_id,
    new_tid,
    path_headers,
)
from phone.msrp.tls import Fingerprint
from phone.msrp.uri import MsrpUri

if TYPE_CHECKING:
    from phone.msrp.connection import MsrpConnection
    from phone.msrp.endpoint import MsrpEndpoint

log = logging.getLogger(__name__)

DEFAULT_MESSAGE_LIMIT = 1 << 20
"""Largest message kept in memory (chat text); files go to a `FileSink`."""
MAX_INCOMING = 8
"""Messages being received at once in one session (each up to its sink's limit)."""
MAX_TRACKED = 256
"""Sent messages whose REPORT is still awaited, per session; older ones are given up."""
SEND_WINDOW = 16
"""Chunks of one message sent before waiting for the oldest one's response."""


@dataclass
class OutgoingMessage:
    """A message we sent. `delivered` ends with the peer's success REPORT (sent
    when we asked for one), or fails with a failure REPORT's status (a relay's,
    RFC 4975 section 7.1.2) or when the session closes first."""

    message_id: str
    size: int
    delivered: asyncio.Future[Status] = field(repr=False)


SinkFactory = Callable[[Frame], MessageSink]


class MsrpSession:
    """Created by `MsrpEndpoint.session`; `start` it, then send and receive."""

    def __init__(
        self,
        endpoint: MsrpEndpoint,
        local_uri: MsrpUri,
        remote_path: tuple[MsrpUri, ...],
        *,
        relay_path: tuple[MsrpUri, ...] = (),
        connection: MsrpConnection | None = None,
        accept_types: tuple[str, ...] = ("*",),
        max_message_bytes: int = DEFAULT_MESSAGE_LIMIT,
        sink_factory: SinkFactory | None = None,
        chunk_size: int | None = None,
        remote_fingerprint: Fingerprint | None = None,
        on_message: Callable[[IncomingMessage], None] | None = None,
        on_closed: Callable[[str], None] | None = None,
    ) -> None:
        """`relay_path` is the Use-Path of our relay (RFC 4976), with `connection`
        the connection to it; `sink_factory(first_chunk)` gives the sink of each
        new message (it may raise `MsrpError`, e.g. 413), a `MemorySink` of
        `max_message_bytes` by default."""
        if not remote_path:
            raise ValueError("the peer's path is empty")
        self.endpoint = endpoint
        self.local_uri = local_uri
        self.remote_path = remote_path
        self.relay_path = relay_path
        self.connection: MsrpConnection | None = None
        self.accept_types = accept_types
        self.max_message_bytes = max_message_bytes
        self.chunk_size = chunk_size or (RELAY_CHUNK_SIZE if relay_path else DIRECT_CHUNK_SIZE)
        self.remote_fingerprint = remote_fingerprint
        self.on_message = on_message
        self.on_closed = on_closed
        self._sink_factory = sink_factory or (lambda _frame: MemorySink(self.max_message_bytes))
        self._incoming: dict[str, IncomingMessage] = {}
        self._outgoing: OrderedDict[str, OutgoingMessage] = OrderedDict()
        self._peer_seen: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.close_reason = ""
        if connection is not None:
            self.bind(connection)

    @property
    def local_path(self) -> tuple[MsrpUri, ...]:
        """Our a=path: our relay's Use-Path, then our URI (RFC 4976 section 5)."""
        return (*self.relay_path, self.local_uri)

    @property
    def to_path(self) -> tuple[MsrpUri, ...]:
        """Where our requests go: through our relays, then along the peer's path."""
        return (*self.relay_path, *self.remote_path)

    # -- setting up

    async def start(self, *, active: bool, timeout: float = 30.0) -> None:
        """Connect (active, a=setup:active) or wait for the peer (passive);
        raises `MsrpError` when that fails within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                if active:
                    await self._connect()
                else:
                    await asyncio.shield(self._peer_seen)
        except TimeoutError:
            self.close("the peer did not connect in time")
            raise MsrpError(408, "the session was not set up in time") from None
        except MsrpError as exc:
            self.close(exc.reason)
            raise
        log.info("MSRP session %s with %s started", self.local_uri.session_id, self.remote_path[-1])

    async def _connect(self) -> None:
        if self.connection is None:
            # The fingerprint is the peer's own: it holds only if we connect to the peer.
            direct = len(self.remote_path) == 1
            connection = await self.endpoint.connect(
                self.to_path[0], fingerprint=self.remote_fingerprint if direct else None
            )
            self.bind(connection)
        assert self.connection is not None
        bind = self._frame("SEND", [("Message-ID", new_message_id()), ("Byte-Range", "1-0/0")])
        response = await self.connection.request(bind)
        if response.status != 200:
            raise MsrpError(
                response.status or 400, f"the peer refused the session: {response.comment}"
            )

    def bind(self, connection: MsrpConnection, *, by_peer: bool = False) -> None:
        """Tie the session to `connection` (506 if it is tied to another one);
        `by_peer`: a request of the peer's came on it, which a passive start awaits."""
        if self.connection is None:
            self.connection = connection
            connection.sessions.add(self)
        elif self.connection is not connection:
            raise MsrpError(506, "session bound to another connection")
        if by_peer and not self._peer_seen.done():
            self._peer_seen.set_result(None)

    # -- sending

    async def send_message(
        self,
        content_type: str,
        body: bytes,
        *,
        success_report: bool = False,
        failure_report: ReportMode = ReportMode.YES,
        message_id: str | None = None,
    ) -> OutgoingMessage:
        """Send one message in as many chunks as it needs; returns once every
        chunk was answered (or sent, with `failure_report` no or partial)."""
        return await self._send(
            content_type,
            len(body),
            lambda start, end: body[start:end],
            success_report,
            failure_report,
            message_id,
        )

    async def send_file(
        self,
        path: Path,
        content_type: str,
        *,
        success_report: bool = False,
        message_id: str | None = None,
    ) -> OutgoingMessage:
        """Send a file, one chunk in memory at a time (RFC 5547 transfers)."""
        with open(path, "rb") as source:

            def read(start: int, end: int) -> bytes:
                source.seek(start)
                return source.read(end - start)

            size = path.stat().st_size
            return await self._send(
                content_type, size, read, success_report, ReportMode.YES, message_id
            )

    async def _send(
        self,
        content_type: str,
        size: int,
        read: Callable[[int, int], bytes],
        success_report: bool,
        failure_report: ReportMode,
        message_id: str | None,
    ) -> OutgoingMessage:
        connection = self._connection()
        delivered: asyncio.Future[Status] = asyncio.get_running_loop().create_future()
        delivered.add_done_callback(_retrieve)  # nobody need await it
        message = OutgoingMessage(message_id or new_message_id(), size, delivered)
        self._outgoing[message.message_id] = message
        while len(self._outgoing) > MAX_TRACKED:
            _, oldest = self._outgoing.popitem(last=False)
            _settle(oldest, MsrpError(408, "no REPORT came"))
        wait = failure_report is ReportMode.YES
        pending: deque[asyncio.Future[Frame]] = deque()
        try:
            for byte_range, flag in chunk_ranges(size, self.chunk_size):
                headers = [("Message-ID", message.message_id), ("Byte-Range", str(byte_range))]
                if success_report:
                    headers.append(("Success-Report", "yes"))
                if failure_report is not ReportMode.YES:
                    headers.append(("Failure-Report", failure_report.value))
                frame = self._frame("SEND", headers)
                frame.content_type, frame.flag = content_type, flag
                frame.body = read(byte_range.start - 1, byte_range.end or 0)
                future = await _send_chunk(connection, frame, wait)
                if future is not None:
                    pending.append(future)
                while len(pending) > SEND_WINDOW or (pending and pending[0].done()):
                    _check(await pending.popleft())
            while pending:
                _check(await pending.popleft())
        except BaseException:
            for future in pending:
                future.cancel()
            self._outgoing.pop(message.message_id, None)
            raise
        return message

    def _frame(self, method: str, headers: list[tuple[str, str]]) -> Frame:
        return Frame(
            new_tid(),
            method=method,
            headers=path_headers(self.to_path, (self.local_uri,)) + headers,
        )

    def _connection(self) -> MsrpConnection:
        if self.closed or self.connection is None:
            raise MsrpClosed(
                f"session {self.local_uri.session_id} is not open: {self.close_reason}"
            )
        return self.connection

    # -- receiving (called by the connection)

    def chunk_started(self, frame: Frame, has_body: bool) -> ChunkState | None:
        """A SEND for us began: where its body goes, or None for an empty
        SEND outside any message (a binding or keep-alive: answered 200)."""
        if self.closed:
            raise MsrpError(481, "session closed")
        # Every header this chunk's handling reads is checked now (400), before anything is kept.
        message_id, byte_range = frame.message_id, frame.byte_range or ByteRange(1, None, None)
        _ = frame.success_report, frame.failure_report
        if not has_body and (message_id is None or message_id not in self._incoming):
            return None
        if message_id is None:
            raise MsrpError(400, "SEND without Message-ID")
        if has_body and frame.content_type is None:
            raise MsrpError(400, "SEND body without Content-Type")
        message = self._incoming.get(message_id)
        if message is None:
            message = self._new_message(frame, message_id, byte_range)
        elif byte_range.total is not None and message.total not in (None, byte_range.total):
            raise MsrpError(400, "chunk's total differs from the message's")
        if message.total is None:
            message.total = byte_range.total
        return ChunkState(message, byte_range.start - 1, byte_range.end)

    def _new_message(self, frame: Frame, message_id: str, byte_range: ByteRange) -> IncomingMessage:
        if not _accepted(frame.content_type, self.accept_types):
            raise MsrpError(415, f"{frame.content_type} is not accepted here")
        if byte_range.total is not None and byte_range.total > self.max_message_bytes:
            raise MsrpError(413, f"message of {byte_range.total} bytes is over the limit")
        if len(self._incoming) >= MAX_INCOMING:
            raise MsrpError(413, "too many messages in progress")
        message = IncomingMessage(
            message_id, frame.content_type, self._sink_factory(frame), first=frame
        )
        self._incoming[message_id] = message
        return message

    def chunk_ended(
        self, frame: Frame, state: ChunkState, flag: ContinuationFlag
    ) -> MsrpError | None:
        """The chunk is complete: the error to answer it with, if any."""
        state.end(flag)
        message = state.message
        if state.error is not None or flag is ContinuationFlag.ABORT:
            self._drop(message)
            return state.error
        if message.complete:
            self._incoming.pop(message.message_id, None)
            message.sink.close(True)
            if message.first is not None and message.first.success_report:
                self._report(message)
            if self.on_message is not None:
                asyncio.get_running_loop().call_soon(self._deliver, message)
        return None

    def _deliver(self, message: IncomingMessage) -> None:
        assert self.on_message is not None
        try:
            self.on_message(message)
        except Exception:
            log.exception("MSRP session %s: on_message failed", self.local_uri.session_id)

    def _drop(self, message: IncomingMessage) -> None:
        if self._incoming.pop(message.message_id, None) is not None:
            message.sink.close(False)

    def _report(self, message: IncomingMessage) -> None:
        """A success REPORT for a whole message (RFC 4975 section 7.1.2)."""
        assert message.first is not None and self.connection is not None
        size = message.total or 0
        headers = [
            ("To-Path", " ".join(str(u) for u in message.first.from_path)),
            ("From-Path", str(self.local_uri)),
            ("Message-ID", message.message_id),
            ("Byte-Range", str(ByteRange(1, size, size))),
            ("Status", str(Status(200, "OK"))),
        ]
        report = Frame(new_tid(), method="REPORT", headers=headers)
        asyncio.get_running_loop().create_task(self._send_report(report))

    async def _send_report(self, report: Frame) -> None:
        connection = self.connection
        if connection is None or connection.closed:
            return
        try:
            await connection.send(report, response=False)
        except MsrpError as exc:
            log.info("MSRP session %s: REPORT not sent: %s", self.local_uri.session_id, exc)

    def report_received(self, frame: Frame) -> None:
        """A REPORT about one of our messages (RFC 4975 section 7.3.2)."""
        message_id = frame.message_id
        message = self._outgoing.get(message_id or "")
        status = frame.report_status
        if message is None or status is None:
            log.debug(
                "MSRP session %s: REPORT for unknown message %s",
                self.local_uri.session_id,
                message_id,
            )
            return
        if status.code != 200:
            del self._outgoing[message.message_id]
            log.info(
                "MSRP session %s: message %s not delivered: %s",
                self.local_uri.session_id,
                message.message_id,
                status,
            )
            _settle(message, MsrpError(status.code, f"delivery failed: {status}"))
            return
        byte_range = frame.byte_range
        if byte_range is None or (byte_range.end or 0) >= message.size:
            del self._outgoing[message.message_id]
            _settle(message, status)

    # -- ending

    def connection_lost(self, connection: MsrpConnection, reason: str) -> None:
        if connection is self.connection:
            self.close(f"connection lost: {reason}")

    def close(self, reason: str = "closed") -> None:
        """End the session: unfinished messages are dropped, its URI forgotten,
        and its connection closed unless another session or a relay uses it."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.endpoint.forget(self)
        for message in list(self._incoming.values()):
            self._drop(message)
        error = MsrpClosed(f"session closed: {reason}")
        for outgoing in self._outgoing.values():
            _settle(outgoing, error)
        self._outgoing.clear()
        if not self._peer_seen.done():
            self._peer_seen.set_exception(error)
            self._peer_seen.exception()  # retrieved: nobody may be waiting
        connection = self.connection
        if connection is not None:
            connection.sessions.discard(self)
            if not connection.sessions and not connection.keep_open:
                connection.close("no session uses it")
        log.info("MSRP session %s closed: %s", self.local_uri.session_id, reason)
        if self.on_closed is not None:
            try:
                self.on_closed(reason)
            except Exception:
                log.exception("MSRP session %s: on_closed failed", self.local_uri.session_id)


async def _send_chunk(
    connection: MsrpConnection, frame: Frame, wait: bool
) -> asyncio.Future[Frame] | None:
    """Send a chunk, under another transaction id if its body happens to hold
    its end-line (RFC 4975 section 7.1.1: the sender makes sure it does not)."""
    while True:
        try:
            return await connection.send(frame, response=wait)
        except ValueError:
            frame.tid = new_tid()


def _settle(message: OutgoingMessage, outcome: Status | MsrpError) -> None:
    if message.delivered.done():
        return
    if isinstance(outcome, MsrpError):
        message.delivered.set_exception(outcome)
    else:
        message.delivered.set_result(outcome)


def _retrieve(future: asyncio.Future[Status]) -> None:
    """Mark a failure as seen, so that an unawaited `delivered` logs nothing."""
    if not future.cancelled():
        future.exception()


def _check(response: Frame) -> None:
    if response.status != 200:
        raise MsrpError(
            response.status or 400, f"chunk refused: {response.status} {response.comment}"
        )


def _accepted(content_type: str | None, accept_types: tuple[str, ...]) -> bool:
    """Whether a type is in an accept-types list (RFC 4975 section 8.6: `*`, `type/*`)."""
    if content_type is None:
        return True
    mime = content_type.split(";", 1)[0].strip().lower()
    major = mime.split("/", 1)[0]
    for accepted in accept_types:
        accepted = accepted.lower()
        if accepted in ("*", mime) or accepted == f"{major}/*":
            return True
    return False
