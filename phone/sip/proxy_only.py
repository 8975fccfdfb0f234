"""Accept only from the proxy: a registered phone takes requests only from its servers.

SIP scanners sweep whole address ranges and ring desk phones at night with
INVITEs sent straight to their ports. A phone with a registrar is reached
through it (and its outbound proxy): a request that starts a call, a message,
a subscription, or that notifies or refers, and comes from anywhere else is
not meant for it. `ProxyOnly` is a request hook (`phone.sip.rawsip`, before
the dialog layer and before call admission, so such a request costs no media
socket) that answers those 403 Forbidden statelessly (RFC 3261 section
21.4.4), as Snom's and Yealink's "accept only from proxy" do.

Only requests outside a dialog are judged: one with a To tag belongs to a
dialog we made (a call, a subscription, a REFER's implicit subscription), and
its peer may send it straight to our Contact when the proxy does not
record-route, as a conference focus sends its sipfrag NOTIFYs. A scanner cannot
guess a dialog's Call-ID and tags, and pjsip answers an unknown one 481.

A server's addresses are every address its host name resolves to (A and
AAAA through `getaddrinfo`; not DNS SRV, so name the server by its host and
port). Over UDP the port counts too: a proxy sends from the socket it listens
on (RFC 3581 relies on it), and so two servers on one host are told apart.
Over TCP and TLS a server may open its own connection from any port, so only
the address counts. The names are resolved at start, before the first REGISTER,
and again every ten minutes, so a server that moved is followed.

Refusals are logged once per source when they start, and once when that
source has been quiet for `BURST_QUIET_S`, with the count.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from phone.sip.message import MessageError, SipMessage
from phone.sip.rawsip import LayoutError, RawSip, Responder
from phone.uri import parse_sip_uri

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

GUARDED_METHODS = ("INVITE", "MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER")
BURST_QUIET_S = 60.0
RESOLVE_EVERY_S = 600.0


@dataclass(frozen=True)
class Server:
    """One server the phone trusts: its host as configured, and where it listens."""

    host: str
    port: int
    udp: bool  # whether the port must match too


@dataclass
class _Burst:
    refused: int
    started: float
    last: float


def server_of(uri: str, transport: str) -> Server:
    """The `Server` a registrar or outbound proxy URI names (RFC 3263 defaults: 5060, 5061)."""
    parsed = parse_sip_uri(uri)
    kind = (parsed.params.get("transport") or transport).lower()
    secure = parsed.scheme == "sips" or kind == "tls"
    return Server(parsed.host.strip("[]"), parsed.port or (5061 if secure else 5060), kind == "udp")


class ProxyOnly:
    """The request hook that refuses the guarded methods from anyone but `servers`."""

    def __init__(self, raw: RawSip, servers: list[Server], loop: asyncio.AbstractEventLoop) -> None:
        self.refused = 0  # since start
        self._raw = raw
        self._servers = servers
        self._loop = loop
        self._trusted: set[tuple[str, int | None]] = set()
        self._bursts: dict[str, _Burst] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._layout_error_logged = False
        for method in GUARDED_METHODS:
            raw.on_request(method, self._on_request)

    def start(self) -> None:
        """Resolve the servers now (before the first REGISTER), then every `RESOLVE_EVERY_S`."""
        self._apply(self._lookup())
        self._refresher = self._loop.create_task(self._refresh(), name="proxy-only-resolve")

    async def _refresh(self) -> None:
        import asyncio  # not at import: phone.sip.endpoint runs before the loop exists

        while True:
            await asyncio.sleep(RESOLVE_EVERY_S)
            self._apply(await self._loop.run_in_executor(None, self._lookup))

    def _lookup(self) -> set[tuple[str, int | None]]:
        """Every address of every server (blocking: getaddrinfo)."""
        trusted: set[tuple[str, int | None]] = set()
        for server in self._servers:
            try:
                infos = socket.getaddrinfo(server.host, server.port, type=socket.SOCK_DGRAM)
            except (socket.gaierror, UnicodeError) as exc:
                log.warning(
                    "cannot resolve %s (requests from it are refused): %s", server.host, exc
                )
                continue
            for _family, _type, _proto, _name, address in infos:
                trusted.add((str(address[0]), server.port if server.udp else None))
        return trusted

    def _apply(self, trusted: set[tuple[str, int | None]]) -> None:
        if trusted != self._trusted:
            log.info(
                "accepting calls, messages and subscriptions only from %s",
                ", ".join(sorted(f"{host}:{port or '*'}" for host, port in trusted)) or "nobody",
            )
        self._trusted = trusted

    def close(self) -> None:
        for method in GUARDED_METHODS:
            self._raw.remove_handler(method, self._on_request)
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for source in list(self._bursts):
            self._log_burst_over(source)

    def trusts(self, host: str, port: int) -> bool:
        return (host, port) in self._trusted or (host, None) in self._trusted

    def _on_request(self, request: SipMessage, respond: Responder) -> bool:
        if _in_dialog(request):
            return False
        try:
            host, port = self._raw.source_address(respond.rdata)
        except LayoutError as exc:
            # The same for every request: refuse (the phone stays reachable
            # through nobody), say why once.
            if not self._layout_error_logged:
                self._layout_error_logged = True
                log.error("cannot tell where requests come from, refusing them all: %s", exc)
            respond(403)
            return True
        if self.trusts(host, port):
            return False
        respond(403)
        self._count(f"{host}:{port}", request.method or "?")
        return True

    def _count(self, source: str, method: str) -> None:
        now = self._loop.time()
        self.refused += 1
        burst = self._bursts.get(source)
        if burst is None:
            log.warning(
                "refusing %s from %s with 403: not the registrar or outbound proxy",
                method,
                source,
            )
            self._bursts[source] = _Burst(1, now, now)
            if self._timer is None:
                self._timer = self._loop.call_later(BURST_QUIET_S, self._end_bursts)
            return
        burst.refused += 1
        burst.last = now

    def _end_bursts(self) -> None:
        self._timer = None
        now = self._loop.time()
        for source, burst in list(self._bursts.items()):
            if now - burst.last >= BURST_QUIET_S:
                self._log_burst_over(source)
        if self._bursts:
            next_end = min(b.last for b in self._bursts.values()) + BURST_QUIET_S
            self._timer = self._loop.call_later(max(0.0, next_end - now), self._end_bursts)

    def _log_burst_over(self, source: str) -> None:
        burst = self._bursts.pop(source)
        log.info(
            "requests from %s over: %d refused in %.1f s",
            source,
            burst.refused,
            burst.last - burst.started,
        )


def _in_dialog(request: SipMessage) -> bool:
    try:
        return request.to.tag is not None
    except MessageError:
        return False  # judged as out of dialog; pjsip refuses what it cannot parse
