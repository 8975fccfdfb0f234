"""One MSRP connection (RFC 4975 section 5.4): a TCP or TLS stream carrying
the frames of one or more sessions.

The connection reads frames with `FrameParser`, matches responses to its
open transactions by transaction id (a response that matches none, such as
the second 200 a relay's SEND gets, is dropped), and hands requests to the
sessions through a `Router` (the endpoint). It answers what it can: a SEND
to no session gets 481, a body over the non-SEND limit 413, an unknown
method 501. A framing defect or a peer too slow to finish a frame closes
this connection only, with a 400 first when the frame's paths were read.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from phone.msrp.error import MsrpClosed, MsrpError, MsrpTimeout
from phone.msrp.message import NON_SEND_BODY_LIMIT, ContinuationFlag, Frame, ReportMode, response_to
from phone.msrp.parser import MAX_HEAD, BodyPart, FrameEnd, FrameHead, FrameParser, FramingError

if TYPE_CHECKING:
    from phone.msrp.chunks import ChunkState
    from phone.msrp.session import MsrpSession

log = logging.getLogger(__name__)

READ_SIZE = 65536


@dataclass(frozen=True)
class Limits:
    """What a peer may do before its connection is closed."""

    max_head: int = MAX_HEAD
    head_timeout: float = 10.0  # seconds from a head's first byte to its last
    idle_timeout: float = 30.0  # seconds without a byte in the middle of a frame
    bind_timeout: float = 30.0  # seconds for an accepted connection's first request
    transaction_timeout: float = 30.0  # RFC 4975 section 7.1


class Router(Protocol):
    """Finds the session a request is for; raises `MsrpError` (481, 506) if none."""

    def route(self, frame: Frame, connection: MsrpConnection) -> MsrpSession: ...


class MsrpConnection:
    """Frames in and out of one stream; `outgoing` when we opened it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        router: Router,
        limits: Limits,
        *,
        outgoing: bool,
        on_closed: Callable[[MsrpConnection], None] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._router = router
        self.limits = limits
        self.outgoing = outgoing
        self._on_closed = on_closed
        self._parser = FrameParser(limits.max_head)
        self._transactions: dict[str, asyncio.Future[Frame]] = {}
        self.sessions: set[MsrpSession] = set()
        self.keep_open = False  # a relay's connection outlives its sessions
        self.verified = True  # plain TCP, or TLS with CA and host-name checks
        self.bound = outgoing  # an accepted connection is bound by its first routed request
        self.closed = False
        self.close_reason = ""
        self.stray_responses = 0  # responses that matched no transaction (dropped)
        self._complained = False
        self._head_began: float | None = None
        # The request whose body is being read, and where its body goes.
        self._frame: Frame | None = None
        self._chunk: tuple[MsrpSession, ChunkState] | None = None
        self._body: bytearray | None = None
        self._answered = False
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._writer.get_extra_info("sockname")[:2]
        return host, port

    @property
    def secure(self) -> bool:
        return self._writer.get_extra_info("ssl_object") is not None

    def peer_certificate(self) -> bytes | None:
        """The peer's certificate (DER) on a TLS connection."""
        tls: ssl.SSLObject | None = self._writer.get_extra_info("ssl_object")
        return None if tls is None else tls.getpeercert(binary_form=True)

    # -- sending

    async def send(self, frame: Frame, *, response: bool = True) -> asyncio.Future[Frame] | None:
        """Write `frame`; for a request with `response`, the future of its response
        (an `MsrpTimeout` after the transaction timeout, `MsrpClosed` if the
        connection goes). Returns once the frame is handed to the transport."""
        if self.closed:
            raise MsrpClosed(f"connection to {self.peer} is closed: {self.close_reason}")
        data = frame.encode()
        future: asyncio.Future[Frame] | None = None
        if frame.is_request and response:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            self._transactions[frame.tid] = future
            timer = loop.call_later(self.limits.transaction_timeout, self._expire, frame.tid)
            future.add_done_callback(lambda _: timer.cancel())
        self._writer.write(data)
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self.close(f"write failed: {exc}")
        return future

    async def request(self, frame: Frame) -> Frame:
        """Send a request and wait for its response."""
        future = await self.send(frame)
        assert future is not None
        return await future

    def respond(self, request: Frame, status: int, comment: str | None = None) -> None:
        """Answer a request as its Failure-Report asks (RFC 4975 section 7.1.1):
        never for REPORT or `no`, only failures for `partial`."""
        if request.method == "REPORT" or self.closed:
            return
        try:
            mode = request.failure_report
            response = response_to(request, status, comment)
        except MsrpError as exc:
            self._complain(f"cannot answer {request.method} {request.tid}: {exc}")
            return
        if mode is ReportMode.NO or (mode is ReportMode.PARTIAL and status == 200):
            return
        self._writer.write(response.encode())

    def _expire(self, tid: str) -> None:
        future = self._transactions.pop(tid, None)
        if future is not None and not future.done():
            future.set_exception(MsrpTimeout(f"no response to {tid} from {self.peer}"))

    def close(self, reason: str = "closed") -> None:
        """Close the stream; sessions on it and open transactions end."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._writer.close()
        error = MsrpClosed(f"connection to {self.peer} closed: {reason}")
        for future in self._transactions.values():
            if not future.done():
                future.set_exception(error)
        self._transactions.clear()
        for session in list(self.sessions):
            session.connection_lost(self, reason)
        self.sessions.clear()
        if self._on_closed is not None:
            self._on_closed(self)
        if self._task is not asyncio.current_task():
            self._task.cancel()

    async def wait_closed(self) -> None:
        with suppress(asyncio.CancelledError, ConnectionError, OSError, ssl.SSLError):
            await self._task
        with suppress(ConnectionError, OSError, ssl.SSLError):
            await self._writer.wait_closed()

    # -- receiving

    def _read_timeout(self) -> float | None:
        loop = asyncio.get_running_loop()
        if self._parser.reading_head:
            if self._head_began is None:
                self._head_began = loop.time()
            return max(0.0, self._head_began + self.limits.head_timeout - loop.time())
        self._head_began = None
        if self._parser.in_frame:
            return self.limits.idle_timeout
        return None if self.bound else self.limits.bind_timeout

    async def _read_loop(self) -> None:
        reason = "closed by the peer"
        try:
            while not self.closed:
                timeout = self._read_timeout()
                try:
                    async with asyncio.timeout(timeout):
                        data = await self._reader.read(READ_SIZE)
                except TimeoutError:
                    reason = self._timed_out()
                    break
                if not data:
                    break
                for event in self._parser.feed(data):
                    if self.closed:
                        break
                    self._handle(event)
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            reason = f"read failed: {exc}"
        except asyncio.CancelledError:
            reason = self.close_reason or "cancelled"
        except Exception:  # a bug here must not take the loop down with it
            log.exception("MSRP connection %s: error handling input", self.peer)
            reason = "internal error"
        self.close(reason)

    def _timed_out(self) -> str:
        if self._parser.reading_head:
            what = "slow peer: frame head not complete in time"
        elif self._parser.in_frame:
            what = "slow peer: frame body stalled"
        else:
            what = "no request on an accepted connection"
        self._complain(what)
        if self._frame is not None and not self._answered:
            self.respond(self._frame, 400, "Frame not complete in time")
        return what

    def _complain(self, what: str) -> None:
        """Hostile or broken input: a warning once per connection, then debug."""
        if self._complained:
            log.debug("MSRP %s: %s", self.peer, what)
        else:
            self._complained = True
            log.warning("MSRP %s: %s", self.peer, what)

    def _handle(self, event: FrameHead | BodyPart | FrameEnd | FramingError) -> None:
        if isinstance(event, BodyPart):
            self._on_body(event.data)
        elif isinstance(event, FrameHead):
            self._on_head(event)
        elif isinstance(event, FrameEnd):
            self._on_end(event.flag)
        else:
            self._complain(f"bad framing: {event.error.reason}")
            if event.frame is not None and event.frame.is_request:
                self.respond(event.frame, event.error.status, event.error.reason)
            self.close(f"bad framing: {event.error.reason}")

    def _on_head(self, head: FrameHead) -> None:
        frame = head.frame
        self._frame, self._chunk, self._body, self._answered = frame, None, None, False
        if frame.method == "SEND":
            try:
                session = self._router.route(frame, self)
                self.bound = True
                chunk = session.chunk_started(frame, head.has_body)
            except MsrpError as exc:
                self._reject(frame, exc)
                return
            if chunk is not None:
                self._chunk = (session, chunk)
        else:
            self._body = bytearray()

    def _reject(self, frame: Frame, error: MsrpError) -> None:
        self._complain(f"{frame.method} {frame.tid} refused: {error}")
        self.respond(frame, error.status, error.reason)
        self._answered = True

    def _on_body(self, data: bytes) -> None:
        if self._chunk is not None:
            self._chunk[1].data(data)
        elif self._body is not None:
            if len(self._body) + len(data) > NON_SEND_BODY_LIMIT and self._frame is not None:
                if self._frame.is_request and not self._answered:
                    self._reject(self._frame, MsrpError(413, "body over the non-SEND limit"))
                self._body = None
            else:
                self._body += data

    def _on_end(self, flag: ContinuationFlag) -> None:
        frame, chunk, body = self._frame, self._chunk, self._body
        self._frame, self._chunk, self._body = None, None, None
        if frame is None or self._answered:
            return
        if body is not None:
            frame.body = bytes(body)
        if not frame.is_request:
            future = self._transactions.pop(frame.tid, None)
            if future is None:
                self.stray_responses += 1
                log.debug(
                    "MSRP %s: response %s %s matches no transaction",
                    self.peer,
                    frame.tid,
                    frame.status,
                )
            elif not future.done():
                future.set_result(frame)
        elif frame.method == "SEND":
            if chunk is None:
                self.respond(frame, 200)
                return
            session, state = chunk
            error = session.chunk_ended(frame, state, flag)
            self.respond(frame, error.status if error else 200, error.reason if error else None)
            if error is not None:
                self._complain(f"SEND {frame.tid} failed: {error}")
        elif frame.method == "REPORT":
            try:
                self._router.route(frame, self).report_received(frame)
            except MsrpError as exc:
                self._complain(f"REPORT {frame.tid} dropped: {exc}")
        else:
            self._reject(frame, MsrpError(501, f"method {frame.method} not understood"))
