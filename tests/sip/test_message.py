"""SIP message text and digest: pure functions, malformed input gives MessageError."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phone.sip.digest import Credentials, DigestChallenge
from phone.sip.message import MessageError, NameAddr, SipMessage, header_params, split_list

NOTIFY = (
    b"NOTIFY sip:alice@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    b"f: <sip:bob@example.test>;tag=abc\r\n"
    b't: "Alice" <sip:alice@example.test>;tag=xyz\r\n'
    b"i: cid-1\r\n"
    b"CSeq: 3 NOTIFY\r\n"
    b"o: presence\r\n"
    b"Subscription-State: terminated;reason=probation;retry-after=30\r\n"
    b"Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\n"
    b"Content-Type: application/pidf+xml;charset=utf-8\r\n"
    b"Content-Length: 4\r\n\r\nbodyEXTRA"
)


def test_request_fields() -> None:
    message = SipMessage.parse(NOTIFY)
    assert message.method == "NOTIFY" and message.is_request
    assert message.call_id == "cid-1" and message.cseq == (3, "NOTIFY")
    assert message.from_.tag == "abc" and message.to.tag == "xyz"
    assert message.to.uri == "sip:alice@example.test"
    assert message.header("event") == "presence"
    assert message.content_type == "application/pidf+xml"
    assert message.body == b"body"
    assert message.header_values("record-route") == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert header_params(message.require("subscription-state")) == (
        "terminated",
        {"reason": "probation", "retry-after": "30"},
    )


def test_response_and_name_addr() -> None:
    message = SipMessage.parse(b"SIP/2.0 401 Unauthorized\r\nCall-ID: x\r\n\r\n")
    assert message.status == 401 and message.reason == "Unauthorized" and not message.is_request
    assert NameAddr.parse("sip:a@b;tag=1").uri == "sip:a@b"
    assert split_list('"a,b" <sip:x>, <sip:y,z>') == ['"a,b" <sip:x>', "<sip:y,z>"]


@pytest.mark.parametrize(
    "data",
    [
        b"garbage",
        b"HELLO\r\n\r\n",
        b"NOTIFY sip:a SIP/2.0\r\nno colon here\r\n\r\n",
        b"NOTIFY sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n",
        b"NOTIFY sip:a SIP/2.0\r\n\xff: x\r\n\r\n",
    ],
)
def test_malformed_messages(data: bytes) -> None:
    with pytest.raises(MessageError):
        SipMessage.parse(data)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_message_error(data: bytes) -> None:
    try:
        message = SipMessage.parse(data)
    except MessageError:
        return
    for name in ("from_", "to", "cseq", "call_id"):
        with contextlib.suppress(MessageError):
            getattr(message, name)


def test_digest_md5_qop_auth_matches_rfc_formula() -> None:
    challenge = DigestChallenge.parse(
        'Digest realm="example.test", nonce="n1", qop="auth,auth-int", opaque="o", algorithm=MD5'
    )
    value = challenge.authorization(Credentials("alice", "alicepw"), "SUBSCRIBE", "sip:rls@x", nc=2)
    fields = dict(part.strip().split("=", 1) for part in value.removeprefix("Digest ").split(","))
    fields = {k: v.strip('"') for k, v in fields.items()}
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1 = md5("alice:example.test:alicepw")
    ha2 = md5("SUBSCRIBE:sip:rls@x")
    expected = md5(f"{ha1}:n1:00000002:{fields['cnonce']}:auth:{ha2}")
    assert fields["response"] == expected and fields["opaque"] == "o" and fields["nc"] == "00000002"


def test_digest_without_qop_and_bad_challenges() -> None:
    challenge = DigestChallenge.parse('Digest realm="r", nonce="n"')
    value = challenge.authorization(Credentials("u", "p", realm="r"), "SUBSCRIBE", "sip:x")
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    assert f'response="{md5(md5("u:r:p") + ":n:" + md5("SUBSCRIBE:sip:x"))}"' in value
    with pytest.raises(MessageError):
        challenge.authorization(Credentials("u", "p", realm="other"), "SUBSCRIBE", "sip:x")
    for bad in [
        'Basic realm="r"',
        'Digest realm="r"',
        'Digest nonce="n", realm="r", algorithm=SHA1',
        'Digest realm="r, nonce=n',
    ]:
        with pytest.raises(MessageError):
            DigestChallenge.parse(bad)
    assert "alicepw" not in repr(Credentials("alice", "alicepw"))
