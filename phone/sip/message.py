"""SIP message text as read off the wire (RFC 3261 section 7).

pjsip parses every message it receives, but its parsed form lives in C
structures whose layout we do not want to depend on. The request hook
(`phone.sip.rawsip`) hands us the bytes pjsip received, and this module turns
them into a small immutable value: start line, headers in order (compact
forms expanded, section 7.3.3), body. Bad input raises `MessageError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Compact header names: RFC 3261 section 7.3.3, RFC 6665 (o, u), RFC 3515 (r).
_COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
}

_STATUS_LINE = re.compile(r"^SIP/2\.0 (\d{3}) ?(.*)$")
_REQUEST_LINE = re.compile(r"^([A-Za-z]+) (\S+) SIP/2\.0$")


class MessageError(ValueError):
    """The bytes are not a SIP message we can read."""


@dataclass(frozen=True)
class NameAddr:
    """A name-addr or addr-spec with its header parameters (From, To, Contact, Route)."""

    uri: str
    params: dict[str, str]
    text: str

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @classmethod
    def parse(cls, value: str) -> NameAddr:
        value = value.strip()
        if "<" in value:
            start = value.index("<")
            end = value.find(">", start)
            if end < 0:
                raise MessageError(f"unterminated '<' in {value!r}")
            uri = value[start + 1 : end]
            rest = value[end + 1 :]
        else:
            uri, _, rest = value.partition(";")
            rest = ";" + rest if rest else ""
        if not uri:
            raise MessageError(f"no URI in {value!r}")
        return cls(uri=uri.strip(), params=_params(rest), text=value)


@dataclass(frozen=True)
class SipMessage:
    """One SIP request or response, headers in wire order with lower-case names."""

    method: str | None  # request method, None for a response
    request_uri: str | None
    status: int | None  # response code, None for a request
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of `name`, with comma-separated lists split (section 7.3.1)."""
        name = name.lower()
        values: list[str] = []
        for key, value in self.headers:
            if key == name:
                values.extend(split_list(value))
        return values

    def require(self, name: str) -> str:
        value = self.header(name)
        if value is None:
            raise MessageError(f"missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self.require("call-id")

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = self.require("cseq").partition(" ")
        try:
            return int(number), method.strip().upper()
        except ValueError as exc:
            raise MessageError(f"bad CSeq {self.header('cseq')!r}") from exc

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self.require("from"))

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self.require("to"))

    @property
    def content_type(self) -> str | None:
        """The media type without parameters, lower case."""
        value = self.header("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            raise MessageError("no end of headers")
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MessageError("headers are not UTF-8") from exc
        lines = text.split("\r\n")
        start = lines[0]
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t"):
                if not headers:
                    raise MessageError("continuation line before any header")
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise MessageError(f"bad header line {line[:40]!r}")
            key = name.strip().lower()
            headers.append((_COMPACT.get(key, key), value.strip()))
        length = next((v for k, v in headers if k == "content-length"), None)
        if length is not None:
            try:
                body = body[: int(length)]
            except ValueError as exc:
                raise MessageError(f"bad Content-Length {length!r}") from exc
        status_match = _STATUS_LINE.match(start)
        if status_match:
            return cls(None, None, int(status_match[1]), status_match[2], tuple(headers), body)
        request_match = _REQUEST_LINE.match(start)
        if request_match:
            method = request_match[1].upper()
            return cls(method, request_match[2], None, "", tuple(headers), body)
        raise MessageError(f"bad start line {start[:60]!r}")


def split_list(value: str) -> list[str]:
    """Split a header value at commas that are outside quotes and angle brackets."""
    parts: list[str] = []
    depth_angle = False
    quoted = False
    current: list[str] = []
    for char in value:
        if char == '"':
            quoted = not quoted
        elif char == "<" and not quoted:
            depth_angle = True
        elif char == ">" and not quoted:
            depth_angle = False
        if char == "," and not quoted and not depth_angle:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        key, _, val = item.partition("=")
        params[key.strip().lower()] = val.strip().strip('"')
    return params


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split `token;p1=v1;p2` (Subscription-State, Event) into the token and its parameters."""
    token, _, rest = value.partition(";")
    return token.strip().lower(), _params(rest)
