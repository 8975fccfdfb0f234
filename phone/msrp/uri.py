"""MSRP URIs (RFC 4975 section 9) and how two of them compare (section 6.1).

`msrp://host:port/session-id;tcp` names one end of one session; `msrps`
means TLS. A session's path is a list of them: the relays (RFC 4976) and
then the endpoint. Comparison follows section 6.1: scheme, host and
transport ignore case, the session-id does not, a missing port is 2855, and
userinfo and other parameters take no part. The session-id is opaque: relays
such as MSRPRelay put base64 (`/`, `+`, `=`) in it.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass, field

from phone.msrp.error import MsrpError

DEFAULT_PORT = 2855
SCHEMES = ("msrp", "msrps")
_SESSION_ID = re.compile(r"[A-Za-z0-9\-._~+=/%]+")
_TRANSPORT = re.compile(r"[A-Za-z0-9]+")
_REG_NAME = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,=]+")
_PARAM = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+:@=/]+")
_USERINFO = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:]*")


@dataclass(frozen=True)
class MsrpUri:
    """One MSRP URI; `session_id` is "" for a relay's own URI (RFC 4976 AUTH)."""

    host: str
    port: int | None = None
    session_id: str = ""
    transport: str = "tcp"
    secure: bool = False
    userinfo: str | None = field(default=None, compare=False)
    params: tuple[str, ...] = field(default=(), compare=False)

    @property
    def scheme(self) -> str:
        return "msrps" if self.secure else "msrp"

    @property
    def authority(self) -> tuple[str, int, bool]:
        """What a connection is keyed by (section 8.1): host, port and TLS."""
        return self.host.lower(), self.port or DEFAULT_PORT, self.secure

    def key(self) -> tuple[object, ...]:
        """The parts section 6.1 compares, normalised."""
        return (*self.authority, self.session_id, self.transport.lower())

    def matches(self, other: MsrpUri) -> bool:
        """Equality as RFC 4975 section 6.1 defines it."""
        return self.key() == other.key()

    @classmethod
    def parse(cls, text: str) -> MsrpUri:
        """Parse one URI; any defect is an `MsrpError` (400)."""
        scheme, sep, rest = text.partition("://")
        if not sep or scheme.lower() not in SCHEMES:
            raise MsrpError(400, f"not an MSRP URI: {text[:80]!r}")
        rest, *params = rest.split(";")
        if not params or not _TRANSPORT.fullmatch(params[0]):
            raise MsrpError(400, f"MSRP URI without a transport: {text[:80]!r}")
        if any(not _PARAM.fullmatch(p) for p in params[1:]):
            raise MsrpError(400, f"bad MSRP URI parameter in {text[:80]!r}")
        authority, slash, session_id = rest.partition("/")
        if slash and not _SESSION_ID.fullmatch(session_id):
            raise MsrpError(400, f"bad session-id in {text[:80]!r}")
        userinfo, at, hostport = authority.rpartition("@")
        if at and not _USERINFO.fullmatch(userinfo):
            raise MsrpError(400, f"bad userinfo in {text[:80]!r}")
        host, port = _host_port(hostport, text)
        return cls(
            host=host,
            port=port,
            session_id=session_id,
            transport=params[0],
            secure=scheme.lower() == "msrps",
            userinfo=userinfo if at else None,
            params=tuple(params[1:]),
        )

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        userinfo = f"{self.userinfo}@" if self.userinfo is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        session = f"/{self.session_id}" if self.session_id else ""
        params = "".join(f";{p}" for p in self.params)
        return f"{self.scheme}://{userinfo}{host}{port}{session};{self.transport}{params}"


def new_session_id() -> str:
    """A session-id no one can guess (RFC 4975 section 14.1: at least 80 bits)."""
    return secrets.token_urlsafe(15)


def parse_path(text: str) -> tuple[MsrpUri, ...]:
    """A To-Path, From-Path, Use-Path or a=path value: URIs separated by spaces."""
    uris = tuple(MsrpUri.parse(part) for part in text.split())
    if not uris:
        raise MsrpError(400, "empty MSRP path")
    return uris


def format_path(path: tuple[MsrpUri, ...]) -> str:
    return " ".join(str(uri) for uri in path)


def _host_port(hostport: str, text: str) -> tuple[str, int | None]:
    port_text = ""
    if hostport.startswith("["):
        end = hostport.find("]")
        host, tail = hostport[1:end], hostport[end + 1 :]
        if end < 0 or (tail and not tail.startswith(":")):
            raise MsrpError(400, f"bad IPv6 host in {text[:80]!r}")
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise MsrpError(400, f"bad IPv6 host in {text[:80]!r}") from None
        port_text = tail[1:]
        has_port = bool(tail)
    else:
        host, has_port, port_text = hostport.partition(":")[0], ":" in hostport, ""
        if has_port:
            port_text = hostport.partition(":")[2]
        if not _REG_NAME.fullmatch(host):
            raise MsrpError(400, f"bad host in {text[:80]!r}")
    if not has_port:
        return host, None
    if not port_text.isascii() or not port_text.isdigit() or int(port_text) > 65535:
        raise MsrpError(400, f"bad port in {text[:80]!r}")
    return host, int(port_text)
