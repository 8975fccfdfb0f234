"""The MSRP endpoint of the phone: where its sessions listen, connect and are
found by their URI (RFC 4975 sections 5.4 and 8.1).

One endpoint listens on one port (`msrp`, or `msrps` with TLS settings) for
the sessions whose peer connects, opens connections for the sessions that
connect themselves, and reuses an open connection to the same host, port
and scheme for a new session (section 8.1). Every request is routed by the
session-id of its To-Path: the URI must be one of ours, compared as section
6.1 says, and the From-Path must end at the session's peer, else 481.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from phone.msrp.connection import Limits, MsrpConnection
from phone.msrp.error import MsrpError
from phone.msrp.message import Frame
from phone.msrp.session import MsrpSession
from phone.msrp.tls import Fingerprint, TlsSettings, check_peer, client_context
from phone.msrp.uri import MsrpUri, new_session_id

log = logging.getLogger(__name__)

MAX_ACCEPTED = 64
"""Accepted connections at once; more are closed at once."""


class MsrpEndpoint:
    """Listens on `host:port` (0: any free port) and owns every session and connection."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: TlsSettings | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.limits = limits or Limits()
        self._server: asyncio.Server | None = None
        self._sessions: dict[str, MsrpSession] = {}
        self._outgoing: dict[tuple[str, int, bool], MsrpConnection] = {}
        self._connecting: dict[tuple[str, int, bool], asyncio.Lock] = {}
        self._accepted: set[MsrpConnection] = set()

    @property
    def secure(self) -> bool:
        return self.tls is not None

    async def listen(self) -> None:
        context = self.tls.server_context() if self.tls is not None else None
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, ssl=context, limit=1 << 20
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "MSRP listening on %s://%s:%d", "msrps" if context else "msrp", self.host, self.port
        )

    def new_uri(self, host: str | None = None, port: int | None = None) -> MsrpUri:
        """A fresh URI of ours (section 9: a session-id no one can guess)."""
        return MsrpUri(
            host=host or self.host,
            port=port if port is not None else self.port,
            session_id=new_session_id(),
            secure=self.secure,
        )

    def session(
        self, local_uri: MsrpUri, remote_path: tuple[MsrpUri, ...], **options: Any
    ) -> MsrpSession:
        """A session of ours at `local_uri` with the peer at `remote_path`
        (its a=path); `options` are those of `MsrpSession`."""
        if local_uri.session_id in self._sessions:
            raise ValueError(f"session-id {local_uri.session_id} is in use")
        session = MsrpSession(self, local_uri, remote_path, **options)
        self._sessions[local_uri.session_id] = session
        return session

    def forget(self, session: MsrpSession) -> None:
        """A closed session's URI is no longer ours; its connection goes when unused."""
        if self._sessions.get(session.local_uri.session_id) is session:
            del self._sessions[session.local_uri.session_id]

    def route(self, frame: Frame, connection: MsrpConnection) -> MsrpSession:
        to_path, from_path = frame.to_path, frame.from_path
        session = self._sessions.get(to_path[0].session_id)
        if session is None or len(to_path) != 1 or not session.local_uri.matches(to_path[0]):
            raise MsrpError(481, f"no session at {to_path[0]}")
        if not session.remote_path[-1].matches(from_path[-1]):
            raise MsrpError(481, f"session {to_path[0].session_id} is not with {from_path[-1]}")
        session.bind(connection, by_peer=True)
        return session

    async def connect(
        self, uri: MsrpUri, *, fingerprint: Fingerprint | None = None, reuse: bool = True
    ) -> MsrpConnection:
        """A connection to `uri`'s host: an open one when `reuse` (section 8.1),
        else a new one. On TLS, the peer's certificate must have `fingerprint`
        (RFC 4572), or without one pass the CA and host-name checks; a
        connection that was not checked that way is not reused without one."""
        key = uri.authority
        fingerprint = fingerprint if uri.secure else None
        async with self._connecting.setdefault(key, asyncio.Lock()):
            connection = self._outgoing.get(key)
            usable = connection is not None and not connection.closed
            if not (reuse and usable and connection and (fingerprint or connection.verified)):
                connection = await self._open(uri, fingerprint)
                if reuse:
                    self._outgoing[key] = connection
        if fingerprint is not None:
            try:
                check_peer(connection.peer_certificate(), fingerprint)
            except MsrpError:
                if not connection.sessions:
                    connection.close("certificate does not match the fingerprint")
                raise
        return connection

    async def _open(self, uri: MsrpUri, fingerprint: Fingerprint | None) -> MsrpConnection:
        context = client_context(self.tls, fingerprint) if uri.secure else None
        host, port, _ = uri.authority
        try:
            async with asyncio.timeout(self.limits.transaction_timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context else None,
                    limit=1 << 20,
                )
        except ssl.SSLError as exc:
            raise MsrpError(403, f"TLS with {uri} failed: {exc}") from None
        except (OSError, TimeoutError) as exc:
            raise MsrpError(408, f"cannot connect to {uri}: {exc or 'timeout'}") from None
        connection = MsrpConnection(
            reader, writer, self, self.limits, outgoing=True, on_closed=self._closed
        )
        connection.verified = context is None or context.verify_mode == ssl.CERT_REQUIRED
        log.info("MSRP connected to %s", connection.peer)
        return connection

    def _closed(self, connection: MsrpConnection) -> None:
        self._accepted.discard(connection)
        for key, value in list(self._outgoing.items()):
            if value is connection:
                del self._outgoing[key]
        log.info("MSRP connection %s closed: %s", connection.peer, connection.close_reason)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._accepted) >= MAX_ACCEPTED:
            log.warning("MSRP: %d connections open, refusing another", len(self._accepted))
            writer.close()
            return
        connection = MsrpConnection(
            reader, writer, self, self.limits, outgoing=False, on_closed=self._closed
        )
        self._accepted.add(connection)
        log.info("MSRP connection from %s", connection.peer)

    async def close(self) -> None:
        for session in list(self._sessions.values()):
            session.close("endpoint closed")
        connections = [*self._outgoing.values(), *self._accepted]
        for connection in connections:
            connection.close("endpoint closed")
        for connection in connections:
            await connection.wait_closed()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
