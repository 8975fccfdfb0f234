"""One HTTP/1.1 request and its answer over asyncio streams, framed by h11.

XCAP needs little of HTTP: one request at a time, no pipelining, bodies of a
few kB. h11 (the HTTP/1.1 state machine underneath httpx) does the framing;
this module owns the socket: a fresh connection per request (Kamailio closes
after every answer anyway, and OpenXCAP's nonces are single-use), a deadline
over the whole exchange, and a cap on the body read as it streams in, so a
50 MB answer costs at most `limit` bytes of memory. Why not httpx itself: see
`phone/xcap/__init__.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

USER_AGENT = "simplephone-xcap"
READ_CHUNK = 64 * 1024


class HttpError(Exception):
    """The exchange failed below HTTP semantics: no connection, TLS, a deadline,
    a malformed or oversized answer. The message is one line for the log."""


class BodyTooLarge(HttpError):
    pass


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header called `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

    @property
    def media_type(self) -> str | None:
        """The Content-Type without its parameters, lower case."""
        value = self.header("content-type")
        return None if value is None else value.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port of a URL: what a connection is opened to."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpError(f"not an http(s) URL: {url!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise HttpError(f"bad port in {url!r}") from None
        return cls(parts.scheme, parts.hostname, port)


def request_target(url: str) -> str:
    """The origin-form request target (path and query) of `url`, also the digest-uri."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


async def exchange(
    method: str,
    url: str,
    *,
    headers: list[tuple[str, str]],
    body: bytes | None,
    limit: int,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> HttpResponse:
    """Send one request to `url` and read its whole answer, within `timeout` seconds."""
    origin = Origin.of(url)
    try:
        async with asyncio.timeout(timeout):
            return await _exchange(method, url, origin, headers, body, limit, ssl_context)
    except TimeoutError:
        raise HttpError(f"no complete answer within {timeout:g} s") from None
    except ssl.SSLError as exc:
        raise HttpError(f"TLS: {exc.reason or exc}") from None
    except OSError as exc:
        raise HttpError(
            f"cannot reach {origin.host}:{origin.port}: {exc.strerror or exc}"
        ) from None
    except h11.ProtocolError as exc:
        raise HttpError(f"malformed HTTP answer: {exc}") from None


async def _exchange(
    method: str,
    url: str,
    origin: Origin,
    headers: list[tuple[str, str]],
    body: bytes | None,
    limit: int,
    ssl_context: ssl.SSLContext | None,
) -> HttpResponse:
    tls = origin.scheme == "https"
    if tls and ssl_context is None:
        raise HttpError("an https URL needs a TLS context")
    reader, writer = await asyncio.open_connection(
        origin.host,
        origin.port,
        ssl=ssl_context if tls else None,
        server_hostname=origin.host if tls else None,
    )
    try:
        connection = h11.Connection(h11.CLIENT)
        default_port = 443 if tls else 80
        host = origin.host if ":" not in origin.host else f"[{origin.host}]"
        if origin.port != default_port:
            host = f"{host}:{origin.port}"
        sent = [("Host", host), ("User-Agent", USER_AGENT), ("Connection", "close"), *headers]
        if body is not None:
            sent.append(("Content-Length", str(len(body))))
        request = h11.Request(method=method, target=request_target(url), headers=sent)
        writer.write(connection.send(request) or b"")
        if body:
            writer.write(connection.send(h11.Data(data=body)) or b"")
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        return await _read_response(connection, reader, limit)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _read_response(
    connection: h11.Connection, reader: asyncio.StreamReader, limit: int
) -> HttpResponse:
    response: h11.Response | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(READ_CHUNK)
            connection.receive_data(data)
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            response = event
            length = dict(event.headers).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise BodyTooLarge(f"answer of {int(length)} bytes exceeds the {limit}-byte limit")
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                raise BodyTooLarge(f"answer body exceeds the {limit}-byte limit")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return HttpResponse(
                status=response.status_code,
                reason=response.reason.decode("latin-1"),
                headers=tuple(
                    (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers
                ),
                body=b"".join(chunks),
            )
        elif isinstance(event, h11.ConnectionClosed):
            raise HttpError("the server closed the connection before its answer was complete")
