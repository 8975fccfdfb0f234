"""SIP URI parsing (RFC 3261 §19.1) and name-addr headers (§25.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phone.uri import SipUri, SipUriError, parse_name_addr, parse_sip_uri


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:alice@example.com", SipUri("sip", "alice", "example.com")),
        ("sips:bob@example.com:5061", SipUri("sips", "bob", "example.com", 5061)),
        ("sip:bob@127.0.0.1:5062", SipUri("sip", "bob", "127.0.0.1", 5062)),
        ("sip:bob@[2001:DB8:0::1]:5060", SipUri("sip", "bob", "[2001:db8::1]", 5060)),
        ("sip:example.com", SipUri("sip", None, "example.com")),
        (
            "SIP:Bob@Example.COM;Transport=tcp;lr",
            SipUri("sip", "Bob", "example.com", None, {"transport": "tcp", "lr": None}),
        ),
        ("sip:%61lice@h.example", SipUri("sip", "alice", "h.example")),
        (
            "sip:+4930123;phone-context=example.com@gw.example.com",
            SipUri("sip", "+4930123;phone-context=example.com", "gw.example.com"),
        ),
        (
            "sip:carol@example.com?subject=lunch&priority=urgent",
            SipUri(
                "sip", "carol", "example.com", None, {}, {"subject": "lunch", "priority": "urgent"}
            ),
        ),
        ("sip:bob@localhost.", SipUri("sip", "bob", "localhost.")),
    ],
)
def test_parses(text: str, expected: SipUri) -> None:
    uri = parse_sip_uri(text)
    assert uri == expected
    assert parse_sip_uri(str(uri)) == uri


def test_canonical_string_and_aor() -> None:
    uri = parse_sip_uri("SIP:Bob@Example.COM:5070;Transport=tcp")
    assert str(uri) == "sip:Bob@example.com:5070;transport=tcp"
    assert uri.aor == "sip:Bob@example.com"
    assert parse_sip_uri("sip:[::1]:5060").aor == "sip:[::1]"


def test_same_address_ignores_host_case_port_and_params_but_not_user_case() -> None:
    bob = parse_sip_uri("sip:bob@example.com")
    assert bob.same_address(parse_sip_uri("sip:bob@EXAMPLE.com:5080;transport=tcp"))
    assert not bob.same_address(parse_sip_uri("sip:Bob@example.com"))
    assert not bob.same_address(parse_sip_uri("sip:bob@example.org"))


def test_uris_are_hashable_by_address_parts() -> None:
    assert len({parse_sip_uri("sip:a@b"), parse_sip_uri("sip:a@B")}) == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("bob@", "must start with sip: or sips:"),
        ("alice", "must start with sip: or sips:"),
        ("tel:+123", "must start with sip: or sips:"),
        ("sip:bob@", "empty host"),
        ("sip:@example.com", "empty user part before '@'"),
        ("sip:bob:pw@example.com", "passwords in URIs are not supported, RFC 3261 §19.1.1"),
        ("sip:bob@1.2.3.999", "bad IPv4 address '1.2.3.999'"),
        ("sip:bob@[::1", "IPv6 reference without closing ']'"),
        ("sip:bob@[zz::1]", "bad IPv6 address 'zz::1'"),
        ("sip:bob@-x.example.com", "bad host name '-x.example.com'"),
        ("sip:bob@example.com:0", "port must be from 1 to 65535, got 0"),
        ("sip:bob@example.com:65536", "port must be from 1 to 65535, got 65536"),
        ("sip:bob@example.com:", "port must be a number, got ''"),
        ("sip:bob@example.com;", "empty URI parameter"),
        ("sip:bob@example.com;lr;LR", "parameter 'lr' given twice"),
        ("sip:bob@example.com;x=", "parameter 'x' has an empty value"),
        ("sip:bob@example.com?subject", "URI header 'subject' is not name=value"),
        ("sip:b%zzob@example.com", "bad percent-escape in 'b%zzob'"),
        ("sip:b|ob@example.com", "character '|' not allowed in 'b|ob'"),
        ("sip:a@b@example.com", "bad host name 'b@example.com'"),
        ("sip:bob @example.com", "contains whitespace"),
        (
            '"Bob" <sip:bob@example.com>',
            "only the bare URI belongs here, without display name or <>",
        ),
        ("<sip:bob@example.com>", "only the bare URI belongs here, without display name or <>"),
    ],
)
def test_rejects(text: str, reason: str) -> None:
    with pytest.raises(SipUriError) as caught:
        parse_sip_uri(text)
    assert isinstance(caught.value, ValueError)
    assert caught.value.reason == reason
    assert str(caught.value) == f"not a SIP URI: {text!r} ({reason})"


@pytest.mark.parametrize(
    ("text", "name", "uri"),
    [
        ('"Bob" <sip:bob@example.com>', "Bob", "sip:bob@example.com"),
        ('"Bob \\"the builder\\"" <sip:bob@x.org>', 'Bob "the builder"', "sip:bob@x.org"),
        ("Bob  Smith <sip:bob@x.org>;tag=a6c85cf", "Bob Smith", "sip:bob@x.org"),
        ("<sip:bob@x.org;transport=tcp>;tag=1", None, "sip:bob@x.org;transport=tcp"),
        ('"" <sip:bob@x.org>', None, "sip:bob@x.org"),
        ("  sip:bob@x.org  ", None, "sip:bob@x.org"),
    ],
)
def test_name_addr(text: str, name: str | None, uri: str) -> None:
    parsed_name, parsed_uri = parse_name_addr(text)
    assert parsed_name == name
    assert str(parsed_uri) == uri


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('"Bob <sip:bob@x.org>', "unterminated quoted display name"),
        ('"Bob" sip:bob@x.org', "a quoted display name must be followed by <uri>"),
        ("Bob <sip:bob@x.org", "no closing '>'"),
        ("Bob <sip:bob@x.org> junk", "unexpected text after '>': 'junk'"),
        ("Bob, Jr. <sip:bob@x.org>", "an unquoted display name may only hold tokens"),
        ("Bob <bob@x.org>", "must start with sip: or sips:"),
    ],
)
def test_name_addr_rejects(text: str, reason: str) -> None:
    with pytest.raises(SipUriError) as caught:
        parse_name_addr(text)
    assert caught.value.reason == reason


_label = st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9]", fullmatch=True)
_hosts = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_users = st.none() | st.from_regex(r"[A-Za-z0-9_.!~*'()&=+$,;?/-]{1,12}", fullmatch=True)
_params = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True),
    st.none() | st.from_regex(r"[A-Za-z0-9.-]{1,8}", fullmatch=True),
    max_size=3,
)


@given(
    scheme=st.sampled_from(["sip", "sips"]),
    user=_users,
    host=_hosts,
    port=st.none() | st.integers(1, 65535),
    params=_params,
)
def test_canonical_form_parses_back_to_itself(
    scheme: str, user: str | None, host: str, port: int | None, params: dict[str, str | None]
) -> None:
    uri = SipUri(scheme, user, host, port, params)
    assert parse_sip_uri(str(uri)) == uri


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        uri = parse_sip_uri(text)
    except ValueError:
        return
    assert parse_sip_uri(str(uri)) == uri


_FRAGMENTS = ['"', "<", ">", "\\", " ", ";", "sip:", "bob", "@", "x.org", "tag=1", "Bob", ":5060"]


@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=12).map("".join) | st.text(max_size=30))
def test_any_header_value_parses_or_raises_value_error(text: str) -> None:
    try:
        name, uri = parse_name_addr(text)
    except ValueError:
        return
    assert name is None or name.strip() == name
    assert parse_sip_uri(str(uri)) == uri
