"""MSRP URIs (RFC 4975 section 9) and their comparison (section 6.1)."""

from __future__ import annotations

import pytest

from phone.msrp.error import MsrpError
from phone.msrp.uri import MsrpUri, format_path, parse_path


def test_parse_and_format():
    uri = MsrpUri.parse("msrp://atlanta.example.com:7654/jshA7weztas;tcp")
    assert (uri.host, uri.port, uri.session_id, uri.transport, uri.secure) == (
        "atlanta.example.com", 7654, "jshA7weztas", "tcp", False,
    )  # fmt: skip
    assert str(uri) == "msrp://atlanta.example.com:7654/jshA7weztas;tcp"
    relay = MsrpUri.parse("msrps://alice@relay.example.com;tcp")
    assert (
        relay.secure and relay.port is None and relay.session_id == "" and relay.userinfo == "alice"
    )
    assert str(relay) == "msrps://alice@relay.example.com;tcp"


def test_opaque_base64_session_id_and_ipv6():
    # MSRPRelay's Use-Path session ids are base64: '/', '+' and '=' included.
    uri = MsrpUri.parse("msrps://[2001:DB8::1]:2855/aB+c/d==;tcp;extra=1")
    assert uri.host == "2001:db8::1" and uri.session_id == "aB+c/d=="
    assert uri.params == ("extra=1",)
    assert str(uri) == "msrps://[2001:db8::1]:2855/aB+c/d==;tcp;extra=1"


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("msrp://Host.Example.COM:7/abc;tcp", "MSRP://host.example.com:7/abc;TCP", True),
        ("msrp://host:2855/abc;tcp", "msrp://host/abc;tcp", True),  # default port
        ("msrp://host:7/abc;tcp", "msrp://host:7/ABC;tcp", False),  # session-id is case-sensitive
        ("msrp://host:7/abc;tcp", "msrps://host:7/abc;tcp", False),
        ("msrp://host:7/abc;tcp", "msrp://host:8/abc;tcp", False),
        ("msrp://u@host:7/abc;tcp;x=1", "msrp://host:7/abc;tcp", True),  # userinfo, params ignored
    ],
)
def test_comparison(a, b, equal):
    assert MsrpUri.parse(a).matches(MsrpUri.parse(b)) is equal


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@example.com",
        "msrp://host:7/abc",  # no transport
        "msrp://host:99999/abc;tcp",
        "msrp://host:7/a b;tcp",
        "msrp://[zz::1]:7/abc;tcp",
        "msrp://ho st:7/abc;tcp",
        "msrp://host:7/abc;",
    ],
)
def test_bad_uris(text):
    with pytest.raises(MsrpError) as caught:
        MsrpUri.parse(text)
    assert caught.value.status == 400


def test_paths():
    text = "msrp://relay.example.com:2855/r1;tcp msrp://bob.example.com:8888/9di4ea;tcp"
    path = parse_path(text)
    assert len(path) == 2 and format_path(path) == text
    with pytest.raises(MsrpError):
        parse_path("   ")
