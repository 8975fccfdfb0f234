"""XcapClient against a scripted HTTP server on loopback: hostile and odd answers.

Each answer that must not be used (50 MB bodies, bad XML, HTML, redirect loops,
garbage, silence) gives a typed `XcapError` and exactly one log line; the odd
but legal ones (a Basic-only server, single-use nonces as OpenXCAP's, 503 with
Retry-After, 409 with an xcap-error body) work as the RFCs say.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from base64 import b64encode
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from phone.payloads import presrules, resourcelists, xcapdirectory, xcaperror
from phone.payloads.resourcelists import ResourceLists
from phone.payloads.xcaperror import ConflictKind, Uniqueness, XcapConflict
from phone.xcap import applications
from phone.xcap.client import XcapClient, XcapResource
from phone.xcap.errors import (
    XcapBadAnswer,
    XcapConflictError,
    XcapError,
    XcapUnreachable,
)

XUI = "sip:alice@example.test"
DOCUMENT = resourcelists.build(ResourceLists())


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]
Handler = Callable[[Request], bytes | Writer]


def answer(status: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class ScriptedServer:
    """An HTTP/1.1 server whose every answer comes from `handler`; it records requests."""

    handler: Handler
    requests: list[Request] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def root(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/xcap-root"

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            method, target, _ = request_line.split(" ")
            headers = {}
            for line in filter(None, header_lines):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            request = Request(method, target, headers, body)
            self.requests.append(request)
            reply = self.handler(request)
            if isinstance(reply, bytes):
                writer.write(reply)
            else:
                await reply(writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def scenario(
    handler: Handler, body: Callable[[XcapClient, ScriptedServer], Awaitable[Any]], **client: Any
) -> tuple[Any, ScriptedServer]:
    async def main() -> tuple[Any, ScriptedServer]:
        async with ScriptedServer(handler) as server:
            client.setdefault("retries", 0)
            xcap = XcapClient(server.root, XUI, **client)
            return await body(xcap, server), server

    return asyncio.run(main())


def get_index(xcap: XcapClient, server: ScriptedServer) -> Awaitable[XcapResource]:
    return xcap.get(xcap.document("resource-lists"))


class XcapLog:
    """The records of `phone.xcap` at WARNING and above (not the test server's)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    @property
    def records(self) -> list[logging.LogRecord]:
        return [
            r
            for r in self.caplog.records
            if r.name.startswith("phone.xcap") and r.levelno >= logging.WARNING
        ]


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[XcapLog]:
    with caplog.at_level(logging.WARNING, logger="phone.xcap"):
        yield XcapLog(caplog)


def fails_once(
    warnings: XcapLog, handler: Handler, kind: type[XcapError], **client: Any
) -> XcapError:
    """Run a GET of the index against `handler`; it must raise `kind`, logged once."""
    with pytest.raises(kind) as failure:
        scenario(handler, get_index, **client)
    assert [r.levelno for r in warnings.records] == [logging.WARNING], warnings.records
    assert str(failure.value) in warnings.records[0].getMessage()
    return failure.value


def test_fifty_megabytes_announced(warnings: XcapLog) -> None:
    def huge(request: Request) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/resource-lists+xml\r\n"
            b"Content-Length: 52428800\r\n\r\n" + b"<" * 65536
        )

    error = fails_once(warnings, huge, XcapBadAnswer)
    assert "52428800 bytes exceeds" in str(error)


def test_fifty_megabytes_streamed_without_a_length(warnings: XcapLog) -> None:
    """Close-delimited: the cap stops reading at `limit`, not at 50 MB."""
    sent: list[int] = []

    def stream(request: Request) -> Writer:
        async def write(writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/resource-lists+xml\r\n\r\n")
            chunk = b"<list>" * 10000
            for _ in range(50 * 1024 * 1024 // len(chunk)):
                writer.write(chunk)
                await writer.drain()
                sent.append(len(chunk))

        return write

    fails_once(warnings, stream, XcapBadAnswer, limit=1024 * 1024)
    assert sum(sent) < 50 * 1024 * 1024


def test_bad_xml_with_the_right_type(warnings: XcapLog) -> None:
    def broken(request: Request) -> bytes:
        return answer("200 OK", b"<resource-lists><list>", Content_Type=resourcelists.CONTENT_TYPE)

    with pytest.raises(XcapBadAnswer, match="not well-formed"):
        scenario(broken, lambda xcap, _: xcap.fetch(applications.RESOURCE_LISTS))
    assert len(warnings.records) == 1


def test_hostile_xml_entities(warnings: XcapLog) -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><resource-lists/>'

    def hostile(request: Request) -> bytes:
        return answer("200 OK", bomb, Content_Type=resourcelists.CONTENT_TYPE)

    with pytest.raises(XcapBadAnswer, match="DOCTYPE"):
        scenario(hostile, lambda xcap, _: xcap.fetch(applications.RESOURCE_LISTS))
    assert len(warnings.records) == 1


def test_wrong_content_type(warnings: XcapLog) -> None:
    def html(request: Request) -> bytes:
        return answer("200 OK", b"<html>login</html>", Content_Type="text/html; charset=utf-8")

    error = fails_once(warnings, html, XcapBadAnswer)
    assert "text/html" in str(error)


def test_redirect_loop(warnings: XcapLog) -> None:
    def loop(request: Request) -> bytes:
        return answer("302 Found", Location=request.target)

    fails_once(warnings, loop, XcapBadAnswer)


def test_redirect_within_the_server_is_followed() -> None:
    def moved(request: Request) -> bytes:
        if request.target.startswith("/xcap-root/"):
            return answer("301 Moved", Location=request.target.replace("/xcap-root/", "/new/"))
        return answer("200 OK", DOCUMENT, Content_Type=resourcelists.CONTENT_TYPE, ETag='"1"')

    resource, server = scenario(moved, get_index)
    assert resource.etag == '"1"'
    assert [r.target.split("/")[1] for r in server.requests] == ["xcap-root", "new"]


def test_redirect_to_another_server_is_refused(warnings: XcapLog) -> None:
    def away(request: Request) -> bytes:
        return answer("302 Found", Location="http://127.0.0.2:9/xcap-root/index")

    error = fails_once(warnings, away, XcapBadAnswer)
    assert "another server" in str(error)


def test_garbage_instead_of_http(warnings: XcapLog) -> None:
    fails_once(warnings, lambda request: b"SIP/2.0 200 OK\r\n\r\n", XcapUnreachable)


def test_silence_times_out(warnings: XcapLog) -> None:
    def silent(request: Request) -> Writer:
        async def wait(writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(30)

        return wait

    error = fails_once(warnings, silent, XcapUnreachable, timeout=0.3)
    assert "within 0.3 s" in str(error)


def test_nobody_listening(warnings: XcapLog) -> None:
    async def refused() -> None:
        xcap = XcapClient("http://127.0.0.1:9/xcap-root", XUI, retries=2, retry_first=0.01)
        await xcap.get(xcap.document("resource-lists"))

    with pytest.raises(XcapUnreachable, match="cannot reach"):
        asyncio.run(refused())
    assert len(warnings.records) == 1


def test_503_with_retry_after_is_retried() -> None:
    def busy_once(request: Request) -> bytes:
        if len(server_requests) == 0:
            server_requests.append(request)
            return answer("503 Service Unavailable", Retry_After="0")
        return answer("200 OK", DOCUMENT, Content_Type=resourcelists.CONTENT_TYPE)

    server_requests: list[Request] = []
    resource, server = scenario(busy_once, get_index, retries=1)
    assert resource.body == DOCUMENT and len(server.requests) == 2


def test_409_body_is_typed_and_logged_in_one_line(warnings: XcapLog) -> None:
    conflict = XcapConflict(
        ConflictKind.UNIQUENESS_FAILURE,
        phrase="duplicate rule id",
        uniqueness=(Uniqueness("ruleset/rule/@id", ("a1", "a2")),),
    )

    def refuse(request: Request) -> bytes:
        return answer(
            "409 Conflict", xcaperror.build(conflict), Content_Type=xcaperror.CONTENT_TYPE
        )

    async def write(xcap: XcapClient, server: ScriptedServer) -> Any:
        body = presrules.build(presrules.PresRules())
        return await xcap.put(xcap.document("pres-rules"), body, presrules.CONTENT_TYPE, etag="*")

    with pytest.raises(XcapConflictError) as failure:
        scenario(refuse, write)
    assert failure.value.conflict == conflict
    (record,) = warnings.records
    assert (
        "uniqueness-failure" in record.getMessage() and "duplicate rule id" in record.getMessage()
    )
    assert "\n" not in record.getMessage()


def test_409_with_an_unreadable_body(warnings: XcapLog) -> None:
    def refuse(request: Request) -> bytes:
        return answer("409 Conflict", b"<nope", Content_Type=xcaperror.CONTENT_TYPE)

    error = fails_once(warnings, refuse, XcapConflictError)
    assert isinstance(error, XcapConflictError) and error.conflict is None


def test_every_write_has_a_precondition() -> None:
    def ok(request: Request) -> bytes:
        return answer("200 OK", ETag='"2"')

    async def writes(xcap: XcapClient, server: ScriptedServer) -> None:
        uri = xcap.document("resource-lists")
        await xcap.put(uri, DOCUMENT, resourcelists.CONTENT_TYPE, etag=None)
        await xcap.put(uri, DOCUMENT, resourcelists.CONTENT_TYPE, etag='"1"')
        await xcap.put(uri, DOCUMENT, resourcelists.CONTENT_TYPE, etag="*")
        await xcap.delete(uri, etag='"2"')

    _, server = scenario(ok, writes)
    conditions = [
        (r.method, r.headers.get("if-match"), r.headers.get("if-none-match"))
        for r in server.requests
    ]
    assert conditions == [
        ("PUT", None, "*"),
        ("PUT", '"1"', None),
        ("PUT", "*", None),
        ("DELETE", '"2"', None),
    ]
    assert server.requests[0].headers["content-type"] == resourcelists.CONTENT_TYPE


def test_basic_only_server() -> None:
    token = "Basic " + b64encode(b"alice:secret").decode()

    def basic(request: Request) -> bytes:
        if request.headers.get("authorization") != token:
            return answer("401 Unauthorized", WWW_Authenticate='Basic realm="xcap"')
        return answer("200 OK", DOCUMENT, Content_Type=resourcelists.CONTENT_TYPE)

    resource, server = scenario(basic, get_index, username="alice", password="secret")
    assert resource.body == DOCUMENT and len(server.requests) == 2


def test_single_use_nonces_as_openxcap_issues_them() -> None:
    """Every request is challenged afresh (each nonce works once, OpenXCAP 3.2):
    the client answers the fresh challenge once per request and gets in."""
    nonces = iter(f"nonce{i}" for i in range(100))
    valid: set[str] = set()

    def digest(request: Request) -> bytes:
        header = request.headers.get("authorization", "")
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', header))
        nonce = params.get("nonce", "")
        if nonce in valid:
            valid.discard(nonce)
            ha1 = hashlib.md5(b"alice:example.test:secret").hexdigest()
            ha2 = hashlib.md5(f"{request.method}:{params['uri']}".encode()).hexdigest()
            expected = hashlib.md5(
                f"{ha1}:{nonce}:{params['nc']}:{params['cnonce']}:auth:{ha2}".encode()
            ).hexdigest()
            if params["response"] == expected and params["uri"] == request.target:
                return answer("200 OK", DOCUMENT, Content_Type=resourcelists.CONTENT_TYPE)
        fresh = next(nonces)
        valid.add(fresh)
        return answer(
            "401 Unauthorized",
            WWW_Authenticate=f'Digest realm="example.test", nonce="{fresh}", qop="auth"',
        )

    async def twice(xcap: XcapClient, server: ScriptedServer) -> list[bytes]:
        return [(await get_index(xcap, server)).body for _ in range(2)]

    bodies, server = scenario(digest, twice, username="alice", password="secret")
    assert bodies == [DOCUMENT, DOCUMENT]
    # Each GET: first without (then with a used) nonce, 401, then the answer.
    assert len(server.requests) == 4


def test_a_failing_directory_is_no_directory(warnings: XcapLog) -> None:
    def broken(request: Request) -> bytes:
        return answer("500 Internal Server Error")

    directory, _ = scenario(broken, lambda xcap, _: xcap.directory())
    assert directory is None
    assert len(warnings.records) == 1


def test_a_directory_is_read() -> None:
    listing = xcapdirectory.XcapDirectory(
        (
            xcapdirectory.Folder(
                "resource-lists", (xcapdirectory.DirectoryEntry("http://x/index", '"3"'),)
            ),
        )
    )

    def directory(request: Request) -> bytes:
        assert request.target.endswith(
            "/org.openmobilealliance.xcap-directory/users/sip:alice@example.test/directory.xml"
        )
        return answer(
            "200 OK", xcapdirectory.build(listing), Content_Type=xcapdirectory.CONTENT_TYPE
        )

    found, _ = scenario(directory, lambda xcap, _: xcap.directory())
    assert found == listing


def test_a_document_that_does_not_parse_is_not_overwritten(warnings: XcapLog) -> None:
    """`modify` refuses to write over a document it cannot read (another client's
    extension gone wrong): typed error, one line, no PUT."""

    def garbage(request: Request) -> bytes:
        return answer(
            "200 OK", b"<ruleset/>", Content_Type="application/auth-policy+xml", ETag='"1"'
        )

    async def modify(xcap: XcapClient, server: ScriptedServer) -> Any:
        return await xcap.modify(applications.PRES_RULES, lambda document: presrules.PresRules())

    requests: list[Request] = []

    def record(request: Request) -> bytes:
        requests.append(request)
        return garbage(request)

    with pytest.raises(XcapBadAnswer, match="root element"):
        scenario(record, modify)
    assert [r.method for r in requests] == ["GET"]
    assert len(warnings.records) == 1
