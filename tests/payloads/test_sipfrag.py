"""message/sipfrag status lines, as REFER progress NOTIFYs carry them (RFC 3515)."""

from __future__ import annotations

import pytest

from phone.payloads import sipfrag
from phone.payloads.error import PayloadError


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"SIP/2.0 100 Trying\r\n", 100, "Trying"),
        (b"SIP/2.0 200 OK", 200, "OK"),
        (b"SIP/2.0 603 Declined\r\nContent-Length: 0\r\n\r\n", 603, "Declined"),
        (b"SIP/2.0 486\r\n", 486, ""),
    ],
)
def test_status_lines_are_read(body: bytes, status: int, reason: str) -> None:
    assert sipfrag.parse(body) == sipfrag.StatusFragment(status, reason)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"INVITE sip:bob@x.org SIP/2.0\r\n",
        b"SIP/2.0 99 Low\r\n",
        b"SIP/2.0 700 High\r\n",
        b"SIP/1.0 200 OK\r\n",
        b"SIP/2.0 200 \xff\r\n",
        b"SIP/2.0 200 OK\r\n" + b"X" * sipfrag.MAX_BYTES,
    ],
)
def test_anything_else_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError, match="sipfrag: "):
        sipfrag.parse(body)
