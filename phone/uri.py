"""SIP and SIPS URIs (RFC 3261 §19.1) and the name-addr form of headers (§25.1).

The config names accounts and contacts by URI, and the core matches a caller
against the contacts. Both need one parsed, canonical form: lower-case scheme
and host, compressed IPv6, lower-case parameter names, and percent-escapes in
the user part normalised, so that two spellings of one address compare equal
(§19.1.4).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

_HEX = "0123456789ABCDEFabcdef"
# RFC 3261 §25.1: unreserved = alphanum / mark
_UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()")
# user = 1*( unreserved / escaped / user-unreserved )
_USER_CHARS = _UNRESERVED | frozenset("&=+$,;?/")
# paramchar = param-unreserved / unreserved / escaped
_PARAM_CHARS = _UNRESERVED | frozenset("[]/:&+$")
# hnv-unreserved / unreserved / escaped
_HEADER_CHARS = _UNRESERVED | frozenset("[]/?:+$")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_TOP_LABEL = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


class SipUriError(ValueError):
    """`text` is not a SIP URI; `reason` says which rule of RFC 3261 §19.1 it breaks."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"not a SIP URI: {text!r} ({reason})")


@dataclass(frozen=True)
class SipUri:
    """One parsed sip:/sips: URI.

    `host` is the RFC 3261 `host` production: a lower-case hostname, an IPv4
    address, or an IPv6 reference in brackets (`[2001:db8::1]`). `params` maps
    lower-case parameter names to their values (None for a flag such as `lr`).
    """

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict, hash=False)
    headers: dict[str, str] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        text = f"{self.scheme}:{self.user}@{self.host}" if self.user else self.aor
        if self.port is not None:
            text += f":{self.port}"
        for name, value in self.params.items():
            text += f";{name}" if value is None else f";{name}={value}"
        if self.headers:
            text += "?" + "&".join(f"{name}={value}" for name, value in self.headers.items())
        return text

    @property
    def aor(self) -> str:
        """The address of record: scheme, user and host only (`sip:bob@example.com`)."""
        if self.user is None:
            return f"{self.scheme}:{self.host}"
        return f"{self.scheme}:{self.user}@{self.host}"

    def same_address(self, other: SipUri) -> bool:
        """True when both name the same user at the same host (§19.1.4: user
        case-sensitive, host case-insensitive); scheme, port and parameters are ignored."""
        return self.user == other.user and self.host == other.host


def parse_sip_uri(text: str) -> SipUri:
    """Parse a bare SIP or SIPS URI (no display name, no angle brackets).

    Raises SipUriError (a ValueError) naming what is wrong.
    """
    if not isinstance(text, str):
        raise SipUriError(str(text), "not a string")
    if "<" in text or '"' in text:
        raise SipUriError(text, "only the bare URI belongs here, without display name or <>")
    if any(char.isspace() for char in text):
        raise SipUriError(text, "contains whitespace")
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("sip", "sips"):
        raise SipUriError(text, "must start with sip: or sips:")
    # The user part may hold ';' and '?' (user-unreserved), so it is split off
    # first; '@' appears nowhere else in a SIP URI.
    user: str | None = None
    if "@" in rest:
        userinfo, _, rest = rest.partition("@")
        user = _parse_user(text, userinfo)
    rest, question, header_text = rest.partition("?")
    headers = _parse_headers(text, header_text) if question else {}
    hostport, semicolon, param_text = rest.partition(";")
    host, port = _parse_hostport(text, hostport)
    params = _parse_params(text, param_text) if semicolon else {}
    return SipUri(scheme, user, host, port, params, headers)


def parse_name_addr(text: str) -> tuple[str | None, SipUri]:
    """Parse a From/To/Contact value: `"Bob" <sip:bob@x>`, `Bob <sip:bob@x>`,
    `<sip:bob@x>` or a bare `sip:bob@x` (RFC 3261 §20.10, §25.1 name-addr / addr-spec).

    Header parameters after the closing `>` (such as `;tag=`) belong to the
    header, not to the address, and are left out. Returns (display name or None, URI).
    """
    value = text.strip()
    if "<" not in value and not value.startswith('"'):
        return None, parse_sip_uri(value)
    name: str | None
    if value.startswith('"'):
        name, value = _parse_quoted(text, value)
        value = value.lstrip()
        if not value.startswith("<"):
            raise SipUriError(text, "a quoted display name must be followed by <uri>")
    else:
        raw_name, _, rest = value.partition("<")
        name = " ".join(raw_name.split()) or None
        if name is not None and not all(_TOKEN.fullmatch(word) for word in name.split()):
            raise SipUriError(text, "an unquoted display name may only hold tokens")
        value = "<" + rest
    uri_text, closing, after = value[1:].partition(">")
    if not closing:
        raise SipUriError(text, "no closing '>'")
    after = after.strip()
    if after and not after.startswith(";"):
        raise SipUriError(text, f"unexpected text after '>': {after!r}")
    return name or None, parse_sip_uri(uri_text)


def header_params(text: str) -> dict[str, str | None]:
    """The header parameters of a From/To/Contact value (`;tag=`, a focus's
    `;isfocus`, RFC 4579 §3.3): those after the `>`, or every `;` parameter of a
    bare addr-spec (RFC 3261 §20.10). Raises SipUriError on a malformed one."""
    value = text.strip()
    if "<" in value:
        param_text = value.rpartition(">")[2].strip().removeprefix(";")
    else:
        param_text = value.partition(";")[2]
    return _parse_params(text, param_text) if param_text else {}


def _parse_quoted(text: str, value: str) -> tuple[str, str]:
    """Split a leading quoted-string (with quoted-pairs) off `value`."""
    chars: list[str] = []
    index = 1
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            chars.append(value[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(chars).strip(), value[index + 1 :]
        chars.append(char)
        index += 1
    raise SipUriError(text, "unterminated quoted display name")


def _normalise_escapes(text: str, part: str, allowed: frozenset[str]) -> str:
    """Check the characters of `part` and decode %HH escapes of unreserved characters,
    upper-casing the hex of the others (RFC 3986 §6.2.2), so equal URIs look equal."""
    out: list[str] = []
    index = 0
    while index < len(part):
        char = part[index]
        if char == "%":
            digits = part[index + 1 : index + 3]
            if len(digits) != 2 or any(d not in _HEX for d in digits):
                raise SipUriError(text, f"bad percent-escape in {part!r}")
            decoded = chr(int(digits, 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + digits.upper())
            index += 3
            continue
        if char not in allowed:
            raise SipUriError(text, f"character {char!r} not allowed in {part!r}")
        out.append(char)
        index += 1
    return "".join(out)


def _parse_user(text: str, userinfo: str) -> str:
    if not userinfo:
        raise SipUriError(text, "empty user part before '@'")
    if ":" in userinfo:
        raise SipUriError(text, "passwords in URIs are not supported, RFC 3261 §19.1.1")
    return _normalise_escapes(text, userinfo, _USER_CHARS)


def _parse_hostport(text: str, hostport: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        address, bracket, port_text = hostport[1:].partition("]")
        if not bracket:
            raise SipUriError(text, "IPv6 reference without closing ']'")
        try:
            host = f"[{ipaddress.IPv6Address(address).compressed}]"
        except ValueError:
            raise SipUriError(text, f"bad IPv6 address {address!r}") from None
        if port_text and not port_text.startswith(":"):
            raise SipUriError(text, f"unexpected {port_text!r} after ']'")
        port_text = port_text[1:] if port_text else ""
        has_port = bool(port_text) or hostport.endswith(":")
    else:
        host, colon, port_text = hostport.partition(":")
        has_port = bool(colon)
        host = _parse_host(text, host)
    if not has_port:
        return host, None
    if not port_text.isascii() or not port_text.isdigit():
        raise SipUriError(text, f"port must be a number, got {port_text!r}")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise SipUriError(text, f"port must be from 1 to 65535, got {port}")
    return host, port


def _parse_host(text: str, host: str) -> str:
    if not host:
        raise SipUriError(text, "empty host")
    if all(char.isdigit() or char == "." for char in host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise SipUriError(text, f"bad IPv4 address {host!r}") from None
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    *domain, top = labels
    if not _TOP_LABEL.fullmatch(top) or not all(_DOMAIN_LABEL.fullmatch(lb) for lb in domain):
        raise SipUriError(text, f"bad host name {host!r}")
    return host.lower()


def _parse_params(text: str, param_text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in param_text.split(";"):
        name, equals, value = item.partition("=")
        if not name:
            raise SipUriError(text, "empty URI parameter")
        name = _normalise_escapes(text, name, _PARAM_CHARS).lower()
        if name in params:
            raise SipUriError(text, f"parameter {name!r} given twice")
        if equals and not value:
            raise SipUriError(text, f"parameter {name!r} has an empty value")
        params[name] = _normalise_escapes(text, value, _PARAM_CHARS) if equals else None
    return params


def _parse_headers(text: str, header_text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in header_text.split("&"):
        name, equals, value = item.partition("=")
        if not name or not equals:
            raise SipUriError(text, f"URI header {item!r} is not name=value")
        headers[_normalise_escapes(text, name, _HEADER_CHARS)] = _normalise_escapes(
            text, value, _HEADER_CHARS
        )
    return headers
