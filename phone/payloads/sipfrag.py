"""message/sipfrag (RFC 3420) as a REFER's progress carries it (RFC 3515 section 2.4.5).

The notifier of a REFER reports how the referred request fares with a
fragment whose first line is that request's status line ("SIP/2.0 180
Ringing"); headers may follow and are not needed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phone.payloads.error import PayloadError

CONTENT_TYPE = "message/sipfrag"
DOCUMENT = "sipfrag"
MAX_BYTES = 4096  # a status line and a few headers; anything larger is not progress

_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6]\d\d)(?: (.*))?")


@dataclass(frozen=True)
class StatusFragment:
    status: int
    reason: str


def parse(body: bytes) -> StatusFragment:
    """The status line of a sipfrag body; PayloadError for anything else."""
    if len(body) > MAX_BYTES:
        raise PayloadError(DOCUMENT, f"{len(body)} bytes, more than {MAX_BYTES}")
    first = body.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        line = first.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError(DOCUMENT, "the status line is not UTF-8") from None
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise PayloadError(DOCUMENT, f"no SIP status line: {line[:60]!r}")
    return StatusFragment(int(match[1]), (match[2] or "").strip())
