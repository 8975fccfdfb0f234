"""The XCAP client (RFC 4825): GET, PUT and DELETE of documents, elements and
attributes of one user, with ETags, authentication, redirects and retries.

- Refresh: `get(uri, cached=...)` sends `If-None-Match` with the cached ETag;
  a 304 returns `cached` itself, ETag and all (OpenXCAP and Kamailio send no
  ETag with 304).
- Writes always carry a precondition (RFC 4825 §7.11): `If-Match` with the
  ETag read, `If-Match: *` for "whatever is there", `If-None-Match: *` to
  create. Kamailio takes only a quoted `"*"`: a wildcard answered 412 is
  retried once quoted, and the client remembers it.
- `update(uri, change)` reads, applies `change` to the body, writes with
  `If-Match`; on 412 (another writer came between) it reads again and applies
  the change again, up to `RACE_ATTEMPTS` times. `fetch`/`modify` do the same
  with typed documents (`phone.xcap.applications`).
- 409 bodies (§11) become `XcapConflictError.conflict`.
- Digest (RFC 7616, MD5/SHA-256, qop=auth) or Basic, with the username the
  caller gives (bare `alice` for OpenXCAP, or the AOR). A nonce is reused
  while the server takes it and a fresh challenge is answered once.
- Redirects are followed within the same server (at most `MAX_REDIRECTS`);
  no answer and 503 are retried with back-off for idempotent requests.
- Every failure is an `XcapError`, logged here in one line.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urljoin

from phone.payloads import xcapcaps, xcapdirectory, xcaperror, xml
from phone.payloads.error import PayloadError
from phone.payloads.xcapcaps import XcapCaps
from phone.payloads.xcapdirectory import XcapDirectory
from phone.retry import Backoff
from phone.sip.digest import Credentials, DigestChallenge
from phone.sip.message import MessageError
from phone.xcap import http
from phone.xcap.applications import Application
from phone.xcap.errors import (
    XcapAuthError,
    XcapBadAnswer,
    XcapConflictError,
    XcapError,
    XcapNotFound,
    XcapPreconditionFailed,
    XcapStatusError,
    XcapUnreachable,
)
from phone.xcap.selector import DocumentSelector, XcapUri

log = logging.getLogger(__name__)

D = TypeVar("D")

TIMEOUT_S = 10.0
RETRIES = 2
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 8.0
RETRY_JITTER = 0.2
MAX_REDIRECTS = 5
RACE_ATTEMPTS = 4
ELEMENT_TYPE = "application/xcap-el+xml"
ATTRIBUTE_TYPE = "application/xcap-att+xml"
_REDIRECTS = (301, 302, 303, 307, 308)
_XML_TYPES = ("application/xml", "text/xml", ELEMENT_TYPE, ATTRIBUTE_TYPE)


@dataclass(frozen=True)
class XcapResource:
    """A document, element or attribute as read: its body and ETag."""

    uri: XcapUri
    body: bytes
    etag: str | None
    content_type: str | None = None


@dataclass(frozen=True)
class Document(Generic[D]):
    """A typed document as read: the parsed `value` and the resource it came from."""

    value: D
    resource: XcapResource


_LIST_ITEM = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_SCHEME = re.compile(r"\s*([!#$%&'*+.^_`|~\w-]+)(?:\s+(?!=)(.*))?\s*", re.DOTALL)


def _challenges(values: list[str]) -> dict[str, str]:
    """Auth scheme (lower case) -> its parameters, from WWW-Authenticate values.

    One value may hold several challenges (Kamailio sends `Basic realm="x",
    Digest realm="x", nonce=...` in one header, RFC 7235 §4.1).
    """
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for value in values:
        for piece in _LIST_ITEM.findall(value):
            scheme = _SCHEME.fullmatch(piece)
            if scheme is not None:
                current = found.setdefault(scheme[1].lower(), [])
                if scheme[2]:
                    current.append(scheme[2].strip())
            elif current is not None and piece.strip():
                current.append(piece.strip())
    return {scheme: ", ".join(params) for scheme, params in found.items()}


class XcapClient:
    """The XCAP documents of one user (`xui`, the SIP AOR) below one XCAP root."""

    def __init__(
        self,
        root: str,
        xui: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = TIMEOUT_S,
        limit: int = xml.MULTIPART_LIMIT,
        ssl_context: ssl.SSLContext | None = None,
        retries: int = RETRIES,
        retry_first: float = RETRY_FIRST_S,
    ) -> None:
        """`username` defaults to none (no auth); `ssl_context` to the system's CAs
        with verification (made only for an https root)."""
        try:
            http.Origin.of(root)
        except http.HttpError as exc:
            raise ValueError(str(exc)) from None
        self.root = root.rstrip("/")
        self.xui = xui
        self.timeout = timeout
        self.limit = limit
        self.retries = retries
        self.retry_first = retry_first
        self._credentials = None if username is None else Credentials(username, password or "")
        self._ssl_context = ssl_context
        self._challenge: DigestChallenge | None = None
        self._nc = 0
        self._basic = False
        self._wildcard = "*"

    def document(self, auid: str, name: str = "index") -> XcapUri:
        """The URI of this user's document `name` of application `auid`."""
        return XcapUri(DocumentSelector(auid, self.xui, name))

    # -- reading ---------------------------------------------------------

    async def get(self, uri: XcapUri, *, cached: XcapResource | None = None) -> XcapResource:
        """GET `uri`; with `cached` (and its ETag) a conditional GET that returns
        `cached` itself when unchanged (304)."""
        headers = []
        if cached is not None and cached.etag is not None:
            headers.append(("If-None-Match", cached.etag))
        response = await self._call("GET", uri, headers=headers, expect=(200, 304))
        if response.status == 304:
            if cached is None:
                raise self._logged("GET", uri, XcapBadAnswer("304 to an unconditional GET"))
            return cached
        media_type = response.media_type
        if media_type is None or not (media_type in _XML_TYPES or media_type.endswith("+xml")):
            raise self._logged("GET", uri, XcapBadAnswer(f"the answer is {media_type}, not XML"))
        return XcapResource(uri, response.body, response.header("etag"), media_type)

    async def fetch(
        self,
        application: Application[D],
        name: str = "index",
        *,
        cached: Document[D] | None = None,
    ) -> Document[D]:
        """GET and parse one of this user's documents; `cached` itself when unchanged."""
        uri = self.document(application.auid, name)
        resource = await self.get(uri, cached=None if cached is None else cached.resource)
        if cached is not None and resource is cached.resource:
            return cached
        return Document(self._parse(application, resource), resource)

    async def capabilities(self) -> XcapCaps:
        """The server's xcap-caps (RFC 4825 §12), a global document."""
        uri = XcapUri(DocumentSelector(xcapcaps.AUID, None, "index"))
        resource = await self.get(uri)
        return self._parse(Application.of(xcapcaps), resource)

    async def directory(self) -> XcapDirectory | None:
        """The user's OMA XCAP directory, or None where the server has none or it
        fails (OpenXCAP answers 500 with its SQLite back-end)."""
        uri = self.document(xcapdirectory.AUID, "directory.xml")
        try:
            resource = await self.get(uri)
            return self._parse(Application.of(xcapdirectory), resource)
        except XcapError:
            return None

    # -- writing ---------------------------------------------------------

    async def put(
        self, uri: XcapUri, body: bytes, content_type: str, *, etag: str | None
    ) -> str | None:
        """PUT `body` at `uri` and return the new ETag. `etag` is the precondition:
        the ETag read, "*" for anything there, None to create only."""
        return await self._write("PUT", uri, etag, body=body, content_type=content_type)

    async def delete(self, uri: XcapUri, *, etag: str) -> str | None:
        """DELETE `uri` if its document still has `etag` ("*": whatever it has)."""
        return await self._write("DELETE", uri, etag)

    async def update(
        self, uri: XcapUri, change: Callable[[bytes | None], bytes], content_type: str
    ) -> XcapResource:
        """Read `uri` (None when missing), write `change(body)` with `If-Match`, and on
        412 read and apply again: `change` must be a function of what it is given."""
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                current: XcapResource | None = await self.get(uri)
            except XcapNotFound:
                current = None
            body = change(None if current is None else current.body)
            if current is not None and body == current.body:
                return current
            etag = None if current is None else (current.etag or "*")
            try:
                new_etag = await self.put(uri, body, content_type, etag=etag)
            except XcapPreconditionFailed:
                if attempt == RACE_ATTEMPTS:
                    raise
                log.info("XCAP %s changed under us; reading it again", uri.document.path)
                continue
            return XcapResource(uri, body, new_etag, content_type)
        raise AssertionError("unreachable")

    async def modify(
        self, application: Application[D], change: Callable[[D | None], D], name: str = "index"
    ) -> Document[D]:
        """`update` with typed documents: `change` gets the parsed document (None
        when there is none) and returns the one to write."""

        uri = self.document(application.auid, name)

        def apply(body: bytes | None) -> bytes:
            if body is None:
                return application.build(change(None))
            try:
                value = application.parse(body)
            except PayloadError as exc:
                raise self._logged("GET", uri, XcapBadAnswer(str(exc))) from None
            return application.build(change(value))

        resource = await self.update(uri, apply, application.content_type)
        return Document(application.parse(resource.body), resource)

    async def _write(
        self,
        method: str,
        uri: XcapUri,
        etag: str | None,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> str | None:
        headers = [] if content_type is None else [("Content-Type", content_type)]
        condition = ("If-None-Match", "*") if etag is None else ("If-Match", etag)
        wildcards = [self._wildcard, '"*"'] if self._wildcard == "*" else [self._wildcard]
        forms = wildcards if etag in ("*", '"*"') else [condition[1]]
        for number, form in enumerate(forms, 1):
            try:
                response = await self._call(
                    method,
                    uri,
                    headers=[*headers, (condition[0], form)],
                    body=body,
                    expect=(200, 201),
                )
            except XcapPreconditionFailed:
                if number == len(forms):
                    raise
                continue  # Kamailio refuses a bare * (RFC 7232) and takes it quoted.
            if len(forms) > 1:
                self._wildcard = form
            return response.header("etag")
        raise AssertionError("unreachable")

    # -- the exchange ----------------------------------------------------

    def _parse(self, application: Application[D], resource: XcapResource) -> D:
        try:
            return application.parse(resource.body)
        except PayloadError as exc:
            raise self._logged("GET", resource.uri, XcapBadAnswer(str(exc))) from None

    def _logged(self, method: str, uri: XcapUri, error: XcapError) -> XcapError:
        quiet = isinstance(error, XcapNotFound | XcapPreconditionFailed)
        log.log(
            logging.INFO if quiet else logging.WARNING,
            "XCAP %s %s: %s",
            method,
            uri.url(""),
            error,
        )
        return error

    async def _call(
        self,
        method: str,
        uri: XcapUri,
        *,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
        expect: tuple[int, ...],
    ) -> http.HttpResponse:
        try:
            response = await self._request(method, uri.url(self.root), headers, body)
            if response.status not in expect:
                raise _status_error(response)
            return response
        except XcapError as error:
            raise self._logged(method, uri, error) from None

    async def _request(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> http.HttpResponse:
        """One request with redirects and retries, answered by its final response."""
        backoff = Backoff(self.retry_first, RETRY_MAX_S, jitter=RETRY_JITTER)
        idempotent = method in ("GET", "DELETE") or any(
            name.startswith("If-") for name, _ in headers
        )
        redirects = attempts = 0
        while True:
            try:
                response = await self._authorized(method, url, headers, body)
            except http.BodyTooLarge as exc:
                raise XcapBadAnswer(str(exc)) from None
            except http.HttpError as exc:
                if not idempotent or attempts >= self.retries:
                    raise XcapUnreachable(str(exc)) from None
                attempts += 1
                await asyncio.sleep(backoff.delay())
                continue
            if response.status in _REDIRECTS and (method == "GET" or response.status >= 307):
                redirects += 1
                url = self._redirect(url, response, redirects)
                continue
            if response.status == 503 and idempotent and attempts < self.retries:
                attempts += 1
                await asyncio.sleep(backoff.delay(_retry_after(response)))
                continue
            return response

    def _redirect(self, url: str, response: http.HttpResponse, count: int) -> str:
        location = response.header("location")
        if location is None:
            raise XcapBadAnswer(f"{response.status} redirect without a Location")
        if count > MAX_REDIRECTS:
            raise XcapBadAnswer(
                f"more than {MAX_REDIRECTS} redirects (a loop?), last to {location}"
            )
        target = urljoin(url, location)
        try:
            same = http.Origin.of(target) == http.Origin.of(url)
        except http.HttpError:
            same = False
        if not same:
            raise XcapBadAnswer(f"redirect to another server refused: {target}")
        return target

    async def _authorized(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> http.HttpResponse:
        """Send, answering a 401 challenge once with fresh parameters."""
        fresh = False
        while True:
            sent = list(headers)
            authorization = self._authorization(method, url)
            if authorization is not None:
                sent.append(("Authorization", authorization))
            response = await http.exchange(
                method,
                url,
                headers=sent,
                body=body,
                limit=self.limit,
                timeout=self.timeout,
                ssl_context=self._context(url),
            )
            if response.status != 401 or self._credentials is None:
                return response
            if fresh:
                raise XcapAuthError("401: the server refused the credentials", 401)
            self._take_challenge(response)
            fresh = True

    def _take_challenge(self, response: http.HttpResponse) -> None:
        challenges = _challenges(response.header_values("www-authenticate"))
        if "digest" in challenges:
            try:
                self._challenge = DigestChallenge.parse("Digest " + challenges["digest"])
            except MessageError as exc:
                raise XcapAuthError(f"401 with an unusable challenge: {exc}", 401) from None
            self._nc = 0
            self._basic = False
        elif "basic" in challenges:
            self._challenge = None
            self._basic = True
        else:
            raise XcapAuthError(f"401 without a Digest or Basic challenge: {challenges}", 401)

    def _authorization(self, method: str, url: str) -> str | None:
        credentials = self._credentials
        if credentials is None:
            return None
        if self._challenge is not None:
            self._nc += 1
            target = http.request_target(url)
            return self._challenge.authorization(credentials, method, target, self._nc)
        if self._basic:
            token = f"{credentials.username}:{credentials.password}".encode()
            return "Basic " + b64encode(token).decode("ascii")
        return None

    def _context(self, url: str) -> ssl.SSLContext | None:
        if not url.startswith("https:"):
            return None
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context


def _retry_after(response: http.HttpResponse) -> float | None:
    value = response.header("retry-after")
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), RETRY_MAX_S)


def _status_error(response: http.HttpResponse) -> XcapError:
    status, summary = response.status, f"{response.status} {response.reason}".strip()
    if status == 409:
        conflict = None
        if response.body:
            try:
                conflict = xcaperror.parse(response.body)
            except PayloadError as exc:
                return XcapConflictError(f"{summary}, unreadable body: {exc}", None)
        return XcapConflictError(f"{summary}: {conflict}" if conflict else summary, conflict)
    if status in (401, 403):
        return XcapAuthError(summary, status)
    if status == 404:
        return XcapNotFound(summary, status)
    if status == 412:
        return XcapPreconditionFailed(summary, status)
    return XcapStatusError(summary, status)
