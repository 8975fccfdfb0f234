"""`build_request`: the one way SUBSCRIBE, PUBLISH, the REGISTER query, the flow
probe, MESSAGE and REFER are built (RFC 3261 sections 8.1.1, 10.2.3, 12.2.1.1, 22.2)."""

from __future__ import annotations

from phone.sip.digest import Credentials, DigestAuth
from phone.sip.identity import Identity
from phone.sip.message import SipMessage
from phone.sip.request import build_request

AOR = "sip:alice@example.test"
PROXY = "<sip:proxy.example.test;lr>"
IDENTITY = Identity(
    aor=AOR,
    contact=lambda uri: f"<sip:alice@192.0.2.1:5060;for={uri}>",
    credentials=Credentials("alice", "alicepw", "*"),
    route=(PROXY,),
)


def challenged_auth() -> DigestAuth:
    auth = DigestAuth(IDENTITY.credentials, "test")
    challenge = SipMessage.parse(
        b"SIP/2.0 407 Proxy Authentication Required\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
        b"From: <sip:alice@example.test>;tag=a\r\nTo: <sip:alice@example.test>;tag=b\r\n"
        b"Call-ID: c\r\nCSeq: 1 PUBLISH\r\n"
        b'Proxy-Authenticate: Digest realm="example.test", nonce="n1", qop="auth"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    assert auth.challenged(challenge)
    return auth


def test_out_of_dialog_request_carries_route_headers_then_authorization() -> None:
    request = build_request(
        IDENTITY,
        "PUBLISH",
        AOR,
        call_id="call-1",
        cseq=7,
        auth=challenged_auth(),
        headers=(("Event", "presence"), ("Expires", "600")),
        content_type="application/pidf+xml",
        body=b"<presence/>",
    )
    names = [name for name, _ in request.headers]
    assert names == ["Route", "Event", "Expires", "Proxy-Authorization"]
    assert request.headers[0] == ("Route", PROXY)
    authorization = request.headers[-1][1]
    assert 'username="alice"' in authorization and f'uri="{AOR}"' in authorization
    assert request.from_.startswith(f"<{AOR}>;tag=")
    assert request.to == f"<{AOR}>"
    assert request.contact == IDENTITY.contact(AOR)
    assert (request.method, request.target, request.call_id, request.cseq) == (
        "PUBLISH",
        AOR,
        "call-1",
        7,
    )
    assert (request.content_type, request.body) == ("application/pidf+xml", b"<presence/>")


def test_each_request_gets_a_fresh_from_tag_unless_given() -> None:
    tags = {build_request(IDENTITY, "OPTIONS", AOR, call_id="c", cseq=1).from_ for _ in range(3)}
    assert len(tags) == 3
    given = build_request(IDENTITY, "OPTIONS", AOR, call_id="c", cseq=1, from_tag="mine")
    assert given.from_ == f"<{AOR}>;tag=mine"


def test_in_dialog_request_uses_the_dialog_route_tags_and_remote_target() -> None:
    """A SUBSCRIBE refresh: Request-URI is the notifier's Contact, the Route its
    Record-Route, To the original target with its tag; no challenge, no
    Authorization."""
    remote_target = "sip:presence@192.0.2.9:5080"
    record_route = ("<sip:edge.example.test;lr>",)
    request = build_request(
        IDENTITY,
        "SUBSCRIBE",
        remote_target,
        call_id="call-2",
        cseq=3,
        from_tag="ours",
        to="sip:bob@example.test",
        to_tag="theirs",
        route=record_route,
        auth=DigestAuth(IDENTITY.credentials, "unchallenged"),
    )
    assert request.headers == (("Route", record_route[0]),)
    assert request.target == remote_target
    assert request.to == "<sip:bob@example.test>;tag=theirs"
    assert request.from_ == f"<{AOR}>;tag=ours"
    assert request.contact == IDENTITY.contact("sip:bob@example.test")


def test_a_register_query_has_no_contact() -> None:
    registrar = "sip:example.test"
    request = build_request(
        IDENTITY, "REGISTER", registrar, call_id="c", cseq=2, to=AOR, contact=False
    )
    assert request.contact is None
    assert request.to == f"<{AOR}>"
    assert request.target == registrar
