"""MSRP frames (RFC 4975 section 7 and 9): requests and responses, their
typed headers, and the bytes they are sent as.

A frame is a start line (`MSRP <tid> SEND`, `MSRP <tid> 200 OK`), header
lines (To-Path and From-Path first, Content-Type last), an optional body
after a blank line, and the end-line `-------<tid>` with its flag: `$` the
message ends here, `+` more chunks follow, `#` the message is abandoned.
Headers are kept as sent, in order; the typed accessors parse on demand and
turn a malformed value into `MsrpError(400)`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from phone.msrp.error import REASONS, MsrpError
from phone.msrp.uri import MsrpUri, format_path, parse_path

NON_SEND_BODY_LIMIT = 10240  # RFC 4975 section 7.1: non-SEND bodies
TID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}")
METHOD = re.compile(r"[A-Z]+")
HEADER_NAME = re.compile(r"[A-Za-z0-9\-_.!%*+`'~]+")
FLAGS = (b"$", b"+", b"#")
_BYTE_RANGE = re.compile(r"(\d{1,18})-(\d{1,18}|\*)/(\d{1,18}|\*)")
_STATUS = re.compile(r"(\d{3}) (\d{3})(?: (.*))?")


class ContinuationFlag(StrEnum):
    END = "$"
    MORE = "+"
    ABORT = "#"


class ReportMode(StrEnum):
    """Success-Report and Failure-Report values (RFC 4975 section 7.1.1)."""

    YES = "yes"
    NO = "no"
    PARTIAL = "partial"  # Failure-Report only


@dataclass(frozen=True)
class ByteRange:
    """`start-end/total`, 1-based and inclusive; None stands for `*`."""

    start: int
    end: int | None
    total: int | None

    @classmethod
    def parse(cls, text: str) -> ByteRange:
        match = _BYTE_RANGE.fullmatch(text.strip())
        if match is None:
            raise MsrpError(400, f"bad Byte-Range {text[:60]!r}")
        start = int(match[1])
        end = None if match[2] == "*" else int(match[2])
        total = None if match[3] == "*" else int(match[3])
        if start < 1 or (end is not None and end < start - 1):
            raise MsrpError(400, f"bad Byte-Range {text[:60]!r}")
        if total is not None and end is not None and end > total:
            raise MsrpError(400, f"Byte-Range end beyond its total: {text[:60]!r}")
        return cls(start, end, total)

    def __str__(self) -> str:
        end = "*" if self.end is None else str(self.end)
        total = "*" if self.total is None else str(self.total)
        return f"{self.start}-{end}/{total}"


@dataclass(frozen=True)
class Status:
    """The Status header of a REPORT: `000 200 OK` (namespace, code, comment)."""

    code: int
    comment: str | None = None
    namespace: int = 0

    @classmethod
    def parse(cls, text: str) -> Status:
        match = _STATUS.fullmatch(text.strip())
        if match is None:
            raise MsrpError(400, f"bad Status {text[:60]!r}")
        return cls(int(match[2]), match[3], int(match[1]))

    def __str__(self) -> str:
        comment = f" {self.comment}" if self.comment else ""
        return f"{self.namespace:03d} {self.code:03d}{comment}"


def new_tid() -> str:
    """A transaction id with 64 bits of randomness (RFC 4975 section 7.1)."""
    return secrets.token_hex(8)


def new_message_id() -> str:
    return secrets.token_hex(10)


@dataclass
class Frame:
    """A request (`method` set) or a response (`status` set).

    `headers` are (name, value) pairs other than Content-Type, in order; a
    frame with `content_type` has a body section, even an empty one.
    """

    tid: str
    method: str | None = None
    status: int | None = None
    comment: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None
    body: bytes = b""
    flag: ContinuationFlag = ContinuationFlag.END

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def header(self, name: str) -> str | None:
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)

    def _required(self, name: str) -> str:
        value = self.header(name)
        if value is None:
            raise MsrpError(400, f"{self.method or self.status} without {name}")
        return value

    @property
    def to_path(self) -> tuple[MsrpUri, ...]:
        return parse_path(self._required("To-Path"))

    @property
    def from_path(self) -> tuple[MsrpUri, ...]:
        return parse_path(self._required("From-Path"))

    @property
    def message_id(self) -> str | None:
        value = self.header("Message-ID")
        if value is not None and not TID.fullmatch(value.strip()):
            raise MsrpError(400, f"bad Message-ID {value[:40]!r}")
        return None if value is None else value.strip()

    @property
    def byte_range(self) -> ByteRange | None:
        value = self.header("Byte-Range")
        return None if value is None else ByteRange.parse(value)

    @property
    def success_report(self) -> bool:
        """Success-Report: yes asks for a REPORT once the message arrived (default no)."""
        return self._report("Success-Report", ReportMode.NO) is ReportMode.YES

    @property
    def failure_report(self) -> ReportMode:
        return self._report("Failure-Report", ReportMode.YES)

    def _report(self, name: str, default: ReportMode) -> ReportMode:
        value = self.header(name)
        if value is None:
            return default
        try:
            mode = ReportMode(value.strip().lower())
        except ValueError:
            raise MsrpError(400, f"bad {name} {value[:20]!r}") from None
        if mode is ReportMode.PARTIAL and name == "Success-Report":
            raise MsrpError(400, "Success-Report cannot be partial")
        return mode

    @property
    def report_status(self) -> Status | None:
        value = self.header("Status")
        return None if value is None else Status.parse(value)

    def int_header(self, name: str) -> int | None:
        value = self.header(name)
        if value is None:
            return None
        if not value.strip().isdigit() or len(value.strip()) > 10:
            raise MsrpError(400, f"bad {name} {value[:20]!r}")
        return int(value)

    def end_line(self) -> bytes:
        return b"-------" + self.tid.encode() + self.flag.encode() + b"\r\n"

    def head(self) -> bytes:
        """Everything before the body (or before the end-line, without one)."""
        if self.method is not None:
            start = f"MSRP {self.tid} {self.method}"
        else:
            comment = self.comment if self.comment is not None else REASONS.get(self.status or 0)
            start = f"MSRP {self.tid} {self.status:03d}" + (f" {comment}" if comment else "")
        for name, value in self.headers:
            if not HEADER_NAME.fullmatch(name) or "\r" in value or "\n" in value:
                raise ValueError(f"cannot send header {name!r}: {value[:40]!r}")
        lines = [start, *(f"{n}: {v}" for n, v in _ordered(self.headers))]
        if self.content_type is not None:
            lines += [f"Content-Type: {self.content_type}", ""]
        return ("\r\n".join(lines) + "\r\n").encode()

    def encode(self) -> bytes:
        """The frame as sent; `ValueError` if the body holds its own end-line."""
        if self.body and self.content_type is None:
            raise ValueError("a body needs a Content-Type")
        # Plain searches, not a regex per tid: each new pattern went into re's
        # cache (512 entries, about 600 bytes each), one per frame sent.
        delimiter = b"\r\n-------" + self.tid.encode()
        data = self.body + b"\r\n"
        if any(delimiter + flag + b"\r\n" in data for flag in (b"$", b"+", b"#")):
            raise ValueError("the body contains the frame's end-line; use another tid")
        body = self.body + b"\r\n" if self.content_type is not None else b""
        return self.head() + body + self.end_line()


def response_to(request: Frame, status: int, comment: str | None = None) -> Frame:
    """The response to `request` (RFC 4975 section 7.2): back to the previous hop,
    from the request's last To-Path URI."""
    headers = [
        ("To-Path", str(request.from_path[0])),
        ("From-Path", str(request.to_path[-1])),
    ]
    return Frame(
        request.tid, status=status, comment=comment or REASONS.get(status), headers=headers
    )


def path_headers(
    to_path: tuple[MsrpUri, ...], from_path: tuple[MsrpUri, ...]
) -> list[tuple[str, str]]:
    return [("To-Path", format_path(to_path)), ("From-Path", format_path(from_path))]


def _ordered(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """To-Path and From-Path first (RFC 4975 section 9), the rest as given."""
    first = {"to-path": 0, "from-path": 1}
    return sorted(headers, key=lambda h: first.get(h[0].lower(), 2))
