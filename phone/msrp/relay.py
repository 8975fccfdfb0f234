"""Our MSRP relay (RFC 4976): AUTH with digest, the Use-Path it grants, and
its refresh before Expires runs out.

The client connects to the relay and sends AUTH; the relay challenges with
401, the client answers with digest credentials, and the 200 carries the
Use-Path that goes before our URI in every a=path we offer, and how long it
lasts (Expires). Sessions then run over this connection, which stays open
while the client does.

Relays disagree on the digest-uri (see the interop notes): Kamailio's msrp
module wants `uri=` (the relay's URI), and MSRPRelay computes it itself and
never answers an AUTH that carries one. With `digest_uri=None` the client
tries `uri=` first; if that AUTH gets no answer within `probe_timeout`, or a
second 401, it tries once more without, on a fresh connection, and keeps
whichever worked. A 403 means wrong credentials.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import replace
from typing import Any

from phone.msrp.connection import MsrpConnection
from phone.msrp.endpoint import MsrpEndpoint
from phone.msrp.error import MsrpError, MsrpTimeout
from phone.msrp.message import Frame, new_tid, path_headers
from phone.msrp.session import MsrpSession
from phone.msrp.tls import Fingerprint
from phone.msrp.uri import MsrpUri, new_session_id, parse_path
from phone.sip.digest import Credentials, DigestChallenge
from phone.sip.message import MessageError

log = logging.getLogger(__name__)

REFRESH_SHARE = 0.75
"""Re-AUTH after this share of Expires has passed."""


class MsrpRelayClient:
    """Holds an authenticated connection to `relay` and its Use-Path."""

    def __init__(
        self,
        endpoint: MsrpEndpoint,
        relay: MsrpUri,
        credentials: Credentials,
        *,
        expires: int | None = None,
        digest_uri: bool | None = None,
        probe_timeout: float = 5.0,
        fingerprint: Fingerprint | None = None,
    ) -> None:
        """`expires`: the lifetime to ask for (None: the relay's default);
        `digest_uri`: send `uri=` (True), never (False), or find out (None)."""
        self.endpoint = endpoint
        self.relay = MsrpUri(relay.host, relay.port, "", relay.transport, relay.secure)
        self.credentials = credentials
        self.expires = expires
        self.digest_uri = digest_uri
        self.probe_timeout = probe_timeout
        self.fingerprint = fingerprint
        self.connection: MsrpConnection | None = None
        self.local_uri: MsrpUri | None = None  # what we AUTHed as; sessions share host:port
        self.use_path: tuple[MsrpUri, ...] = ()
        self.granted: int | None = None  # seconds, from the last 200's Expires
        self._refresh: asyncio.Task[None] | None = None

    async def connect(self) -> tuple[MsrpUri, ...]:
        """Connect and authenticate; returns the Use-Path. Raises `MsrpError`."""
        modes = [True, False] if self.digest_uri is None else [self.digest_uri]
        last: MsrpError | None = None
        for send_uri in modes:
            connection = await self.endpoint.connect(
                self.relay, fingerprint=self.fingerprint, reuse=False
            )
            connection.keep_open = True
            host, port = connection.local_address
            self.local_uri = MsrpUri(host, port, new_session_id(), secure=self.relay.secure)
            self.connection = connection
            try:
                await self._authenticate(send_uri, probing=len(modes) > 1)
            except (MsrpTimeout, _Rechallenged) as exc:
                log.info(
                    "MSRP relay %s: AUTH %s uri= failed (%s)",
                    self.relay,
                    "with" if send_uri else "without",
                    exc,
                )
                connection.close("AUTH failed")
                last = exc
                continue
            except MsrpError:
                connection.close("AUTH failed")
                raise
            self.digest_uri = send_uri
            self._refresh = asyncio.get_running_loop().create_task(self._refresh_loop())
            return self.use_path
        assert last is not None
        raise MsrpError(last.status, f"relay {self.relay} refused AUTH: {last.reason}")

    async def _authenticate(self, send_uri: bool, *, probing: bool) -> None:
        """AUTH, answer the challenge, and take the Use-Path; a 423 (RFC 4976
        section 5.3) sets the Expires we ask for to the relay's bound, once."""
        for _ in range(2):
            response = await self._auth(None, probing)
            if response.status == 401:
                response = await self._auth(self._answer(response, send_uri), probing)
                if response.status == 401:
                    raise _Rechallenged("credentials refused with a new challenge")
            bound = response.int_header("Min-Expires") or response.int_header("Max-Expires")
            if response.status != 423 or bound is None or bound == self.expires:
                break
            log.info(
                "MSRP relay %s: asking for Expires %d instead of %s",
                self.relay,
                bound,
                self.expires,
            )
            self.expires = bound
        if response.status != 200:
            raise MsrpError(
                response.status or 400, f"AUTH answered {response.status} {response.comment}"
            )
        self.use_path = parse_path(response.header("Use-Path") or "")
        self.granted = response.int_header("Expires")
        log.info(
            "MSRP relay %s: Use-Path %s, expires %s",
            self.relay,
            " ".join(map(str, self.use_path)),
            self.granted,
        )

    def _answer(self, challenge: Frame, send_uri: bool) -> str:
        """The Authorization for a 401, with or without `uri=` (see the module docstring)."""
        try:
            digest = DigestChallenge.parse(challenge.header("WWW-Authenticate") or "")
            authorization = digest.authorization(self.credentials, "AUTH", str(self.relay))
        except MessageError as exc:
            raise MsrpError(403, f"unusable challenge: {exc}") from None
        return authorization if send_uri else authorization.replace(f', uri="{self.relay}"', "")

    async def _auth(self, authorization: str | None, probing: bool) -> Frame:
        assert self.connection is not None and self.local_uri is not None
        headers = path_headers((self.relay,), (self.local_uri,))
        if authorization is not None:
            headers.append(("Authorization", authorization))
        if self.expires is not None:
            headers.append(("Expires", str(self.expires)))
        future = await self.connection.send(Frame(new_tid(), method="AUTH", headers=headers))
        assert future is not None
        if not probing or authorization is None:
            return await future
        try:
            async with asyncio.timeout(self.probe_timeout):
                return await future
        except TimeoutError:
            raise MsrpTimeout("no answer to AUTH") from None

    async def _refresh_loop(self) -> None:
        """Re-AUTH before the grant runs out (RFC 4976 section 5.3); on failure
        the connection closes and its sessions end."""
        while self.connection is not None and not self.connection.closed:
            if self.granted is None:
                return
            await asyncio.sleep(max(1.0, self.granted * REFRESH_SHARE))
            old = self.use_path
            try:
                await self._authenticate(bool(self.digest_uri), probing=False)
            except MsrpError as exc:
                log.warning("MSRP relay %s: refresh failed: %s", self.relay, exc)
                self.connection.close("relay refresh failed")
                return
            if old != self.use_path:
                log.warning("MSRP relay %s: Use-Path changed on refresh", self.relay)

    def new_uri(self) -> MsrpUri:
        """A fresh URI of ours on the relay's connection, for a new session: its
        a=path is `(*use_path, uri)` (RFC 4976 section 5)."""
        if self.connection is None or self.local_uri is None or self.connection.closed:
            raise MsrpError(481, f"not connected to relay {self.relay}")
        return replace(self.local_uri, session_id=new_session_id())

    def session(
        self, remote_path: tuple[MsrpUri, ...], *, local_uri: MsrpUri | None = None, **options: Any
    ) -> MsrpSession:
        """A session over the relay at `local_uri` (from `new_uri`, when our offer
        had to name it before the answer came), or at a fresh URI."""
        return self.endpoint.session(
            local_uri or self.new_uri(),
            remote_path,
            relay_path=self.use_path,
            connection=self.connection,
            **options,
        )

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with suppress(asyncio.CancelledError):
                await self._refresh
        if self.connection is not None:
            self.connection.close("relay client closed")
            await self.connection.wait_closed()
            self.connection = None


class _Rechallenged(MsrpError):
    def __init__(self, reason: str) -> None:
        super().__init__(401, reason)
