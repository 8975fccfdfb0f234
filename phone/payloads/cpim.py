"""Message/CPIM (RFC 3862): the envelope around chat messages in MSRP and MESSAGE.

A CPIM message is text: message headers (From, To, cc, DateTime, Subject, NS,
Require and namespaced extensions such as `MyFeatures.Option`), a blank line,
the encapsulated MIME headers (Content-Type...), a blank line, then the
content. Header names are case-sensitive; values are UTF-8 and use the
backslash escapes of RFC 3862 §3, so a value can never break out of its line.
Unknown headers are kept, in order, so a message can be relayed unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from phone.payloads import xml
from phone.payloads.error import PayloadError

CONTENT_TYPE = "message/cpim"
DOCUMENT = "Message/CPIM"
CPIM_LIMIT = 1024 * 1024
"""Largest CPIM message accepted, in bytes (chat text, not file transfers)."""

_HEADER_NAME = re.compile(r"(?:[A-Za-z0-9_-]+\.)?[A-Za-z0-9_-]+")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_ESCAPES = {"\\": "\\", '"': '"', "r": "\r", "n": "\n", "t": "\t"}
_BUILTIN = ("From", "To", "cc", "DateTime", "Subject", "NS", "Require", "Required")


@dataclass(frozen=True)
class Identity:
    """A `Formal-name <URI>` value of From, To or cc (RFC 3862)."""

    uri: str
    display_name: str | None = None

    def __str__(self) -> str:
        if not self.display_name:
            return f"<{self.uri}>"
        name = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{name}" <{self.uri}>'


@dataclass(frozen=True)
class Subject:
    text: str
    lang: str | None = None


@dataclass(frozen=True)
class Header:
    """A header this module has no field for, kept as sent (`Prefix.Name`)."""

    name: str
    value: str
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CpimMessage:
    """A whole CPIM message; `namespaces` maps NS prefixes (None: default) to URIs.

    `content_headers` are the encapsulated MIME headers other than Content-Type.
    """

    content_type: str
    body: bytes
    sender: Identity | None = None
    recipients: tuple[Identity, ...] = ()
    cc: tuple[Identity, ...] = ()
    timestamp: datetime | None = None
    subjects: tuple[Subject, ...] = ()
    namespaces: dict[str | None, str] = field(default_factory=dict)
    require: tuple[str, ...] = ()
    headers: tuple[Header, ...] = ()
    content_headers: tuple[tuple[str, str], ...] = ()


def _unescape(value: str) -> str:
    r"""Undo the header-value escapes: `\\`, `\"`, `\r`, `\n`, `\t` and `\uXXXX`."""
    out: list[str] = []
    index = 0
    while index < len(value):
        char = value[index]
        following = value[index + 1 : index + 2]
        if char != "\\" or not following:
            out.append(char)
            index += 1
        elif following == "u" and _HEX4.fullmatch(value[index + 2 : index + 6]):
            code = int(value[index + 2 : index + 6], 16)
            # A lone surrogate is no character: keep the escape as text.
            out.append(value[index : index + 6] if 0xD800 <= code <= 0xDFFF else chr(code))
            index += 6
        else:
            # An unknown escape is kept literally: senders that never escape are common.
            out.append(_ESCAPES.get(following, char + following))
            index += 2
    return "".join(out)


def _escape(value: str) -> str:
    r"""Escape what may not appear raw in a header value: the backslash and the
    control characters, as `\uXXXX` (the form Blink writes and reads)."""
    return "".join(
        "\\\\" if c == "\\" else f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 else c
        for c in value
    )


def _identity(value: str) -> Identity:
    stripped = value.strip()
    opening = stripped.rfind("<")
    if not stripped.endswith(">") or opening < 0 or opening == len(stripped) - 2:
        raise PayloadError(DOCUMENT, f"identity {value!r} is not 'Name <URI>'")
    name = stripped[:opening].strip()
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return Identity(uri=stripped[opening + 1 : -1].strip(), display_name=name or None)


def _split_header(line: str) -> Header:
    name, colon, rest = line.partition(":")
    if not colon or not _HEADER_NAME.fullmatch(name):
        raise PayloadError(DOCUMENT, f"malformed header line {line[:80]!r}")
    params: list[tuple[str, str]] = []
    if rest.startswith(";"):
        raw_params, _, rest = rest.partition(" ")
        for param in raw_params[1:].split(";"):
            key, _, value = param.partition("=")
            if not _HEADER_NAME.fullmatch(key):
                raise PayloadError(DOCUMENT, f"malformed header parameter in {line[:80]!r}")
            params.append((key, value))
    return Header(name=name, value=_unescape(rest.strip()), params=tuple(params))


def _header_block(data: bytes, start: int, what: str) -> tuple[list[str], int]:
    """The lines from `start` up to the next empty line, and where the rest begins."""
    lines: list[str] = []
    position = start
    while True:
        end = data.find(b"\n", position)
        if end < 0:
            raise PayloadError(DOCUMENT, f"no blank line after the {what}")
        raw = data[position:end].removesuffix(b"\r")
        position = end + 1
        if not raw:
            return lines, position
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise PayloadError(DOCUMENT, f"{what} are not UTF-8: {exc.reason}") from None


def parse(data: bytes, *, limit: int = CPIM_LIMIT) -> CpimMessage:
    """Parse a message/cpim body."""
    if len(data) > limit:
        raise PayloadError(DOCUMENT, f"{len(data)} bytes exceeds the {limit}-byte limit")
    data = bytes(data)
    message_lines, position = _header_block(data, 0, "message headers")
    mime_lines, position = _header_block(data, position, "MIME headers")
    body = data[position:]

    sender = None
    recipients: list[Identity] = []
    cc: list[Identity] = []
    timestamp = None
    subjects: list[Subject] = []
    namespaces: dict[str | None, str] = {}
    require: list[str] = []
    others: list[Header] = []
    for line in message_lines:
        if line[:1] in (" ", "\t"):
            raise PayloadError(DOCUMENT, "CPIM message headers have no continuation lines")
        header = _split_header(line)
        if header.name == "From":
            if sender is not None:
                raise PayloadError(DOCUMENT, "more than one From header")
            sender = _identity(header.value)
        elif header.name == "To":
            recipients.append(_identity(header.value))
        elif header.name == "cc":
            cc.append(_identity(header.value))
        elif header.name == "DateTime":
            timestamp = xml.datetime_value(header.value, DOCUMENT, "DateTime header")
        elif header.name == "Subject":
            subjects.append(Subject(header.value, dict(header.params).get("lang")))
        elif header.name == "NS":
            ns = _identity(header.value)
            namespaces[ns.display_name] = ns.uri
        elif header.name in ("Require", "Required"):  # python-sipsimple writes "Required"
            require.extend(item.strip() for item in header.value.split(",") if item.strip())
        else:
            others.append(header)

    content_headers: list[tuple[str, str]] = []
    for line in mime_lines:
        if line[:1] in (" ", "\t") and content_headers:
            name, value = content_headers[-1]
            content_headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.strip():
            raise PayloadError(DOCUMENT, f"malformed MIME header line {line[:80]!r}")
        content_headers.append((name, value.strip()))
    content_type = next((v for n, v in content_headers if n.lower() == "content-type"), None)
    content_headers = [(n, v) for n, v in content_headers if n.lower() != "content-type"]
    if not content_type:
        raise PayloadError(DOCUMENT, "the encapsulated MIME headers lack Content-Type")
    return CpimMessage(
        content_type=content_type,
        body=body,
        sender=sender,
        recipients=tuple(recipients),
        cc=tuple(cc),
        timestamp=timestamp,
        subjects=tuple(subjects),
        namespaces=namespaces,
        require=tuple(require),
        headers=tuple(others),
        content_headers=tuple(content_headers),
    )


def _line(name: str, value: str, params: tuple[tuple[str, str], ...] = ()) -> str:
    prefix = "".join(f";{key}={val}" for key, val in params)
    return f"{name}:{prefix} {_escape(value)}\r\n"


def build(message: CpimMessage) -> bytes:
    """The message/cpim body for `message`; Content-Type is written first."""
    lines: list[str] = []
    if message.sender is not None:
        lines.append(_line("From", str(message.sender)))
    lines.extend(_line("To", str(r)) for r in message.recipients)
    lines.extend(_line("cc", str(r)) for r in message.cc)
    if message.timestamp is not None:
        lines.append(_line("DateTime", xml.format_datetime(message.timestamp)))
    for subject in message.subjects:
        params = () if subject.lang is None else (("lang", subject.lang),)
        lines.append(_line("Subject", subject.text, params))
    for prefix, uri in message.namespaces.items():
        lines.append(_line("NS", f"<{uri}>" if prefix is None else f"{prefix} <{uri}>"))
    if message.require:
        lines.append(_line("Require", ",".join(message.require)))
    for header in message.headers:
        if not _HEADER_NAME.fullmatch(header.name) or header.name in _BUILTIN:
            raise ValueError(f"cannot send CPIM header named {header.name!r}")
        lines.append(_line(header.name, header.value, header.params))
    mime = [("Content-Type", message.content_type)]
    mime += list(message.content_headers)
    for name, _ in mime[1:]:
        if not _HEADER_NAME.fullmatch(name) or name.lower() == "content-type":
            raise ValueError(f"cannot send a MIME header named {name!r} here")
    for name, value in mime:
        if "\r" in value or "\n" in value:
            raise ValueError(f"MIME header {name} holds a line break")
    head = "".join(lines) + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in mime) + "\r\n"
    return head.encode("utf-8") + message.body
