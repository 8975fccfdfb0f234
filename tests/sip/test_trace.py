"""The SIP trace's masking of credentials (the whole trace is tested in test_diagnostics)."""

from __future__ import annotations

import pytest

pytest.importorskip("pjsua2")

from phone.sip.trace import mask_credentials  # noqa: E402

SECRET = 'nonce="n0nce", response="6629fae49393a05397450978507c4ef1", cnonce="c", nc=00000001'


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (
            f'Authorization: Digest username="alice", realm="example.test", {SECRET}',
            'Authorization: Digest username="alice", realm="example.test", <masked>',
        ),
        (
            f'proxy-authorization:Digest {SECRET}, uri="sip:bob@example.test", algorithm=MD5',
            'proxy-authorization:Digest uri="sip:bob@example.test", algorithm=MD5, <masked>',
        ),
        (
            f'Authorization: Digest username="alice",\r\n  {SECRET}',  # folded (RFC 3261 7.3.1)
            'Authorization: Digest username="alice", <masked>',
        ),
        ("Authorization: Bearer eyJhbGciOi.secret.token", "Authorization: Bearer <masked>"),
    ],
)
def test_credentials_are_masked(line: str, masked: str) -> None:
    text = f"REGISTER sip:example.test SIP/2.0\r\n{line}\r\nContent-Length: 0\r\n\r\n"
    assert mask_credentials(text) == (
        f"REGISTER sip:example.test SIP/2.0\r\n{masked}\r\nContent-Length: 0\r\n\r\n"
    )


def test_other_headers_are_kept() -> None:
    text = 'WWW-Authenticate: Digest realm="example.test", nonce="abc"\r\nX-Authorization: 1\r\n'
    assert mask_credentials(text) == text
