"""Where the chat plugin's MSRP runs: an `MsrpEndpoint` on the phone's
address, or sessions through a relay (RFC 4976) when `relay` is set.

Without a relay the endpoint listens on `port` (0: any free one) and our
a=path is one URI of ours. A second endpoint listens for msrps (TLS) with
the phone's own self-signed certificate, made once with openssl and kept in
the plugin's data directory; its fingerprint goes in our SDP answer to a
TCP/TLS/MSRP offer (RFC 4572), and the peer's certificate must match the
fingerprint of its offer when we connect. With a relay the plugin AUTHs at
start with `relay_username`/`relay_password`, else the account's
credentials, and our a=path is the relay's Use-Path then our URI on that
connection; the relay client refreshes the grant itself. Until the endpoint
listens, or while the relay is not connected, chat offers get 488 (the path
cannot be named).
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path
from typing import Any

from phone.api import (
    Credentials,
    MediaSection,
    MessageSession,
    SdpError,
    SessionDescription,
)
from phone.msrp.endpoint import MsrpEndpoint
from phone.msrp.error import MsrpError
from phone.msrp.relay import MsrpRelayClient
from phone.msrp.sdp import fingerprint, fingerprint_line
from phone.msrp.session import MsrpSession
from phone.msrp.tls import TlsSettings, self_signed
from phone.msrp.uri import MsrpUri, parse_path

log = logging.getLogger(__name__)

PLAIN = "TCP/MSRP"
SECURE = "TCP/TLS/MSRP"
CERTIFICATE = "msrps"  # msrps.pem and msrps.key in the data directory


class ChatTransport:
    def __init__(self, host: str, port: int, relay: MsrpUri | None, data_dir: Path) -> None:
        self.endpoint = MsrpEndpoint(host, port)
        self.secure: MsrpEndpoint | None = None  # msrps, once our certificate is there
        self._fingerprint = ""
        self._relay_uri = relay
        self._data_dir = data_dir
        self.relay: MsrpRelayClient | None = None
        self.ready = False

    async def start(self, credentials: Credentials | None) -> None:
        """Listen, or AUTH at the relay; raises `MsrpError` when the relay refuses."""
        if self._relay_uri is None:
            await self.endpoint.listen()
            self.ready = True  # plain offers now; TLS ones once the certificate is there
            await self._listen_secure()
            return
        if credentials is None:
            raise MsrpError(403, "the relay needs credentials: set relay_username/password")
        self.relay = MsrpRelayClient(self.endpoint, self._relay_uri, credentials)
        await self.relay.connect()
        self.ready = True

    async def _listen_secure(self) -> None:
        cert = self._data_dir / f"{CERTIFICATE}.pem"
        key = self._data_dir / f"{CERTIFICATE}.key"
        try:
            if cert.exists() and key.exists():
                tls = TlsSettings(cert, key, verify_without_fingerprint=False)
            else:
                made = await asyncio.to_thread(self_signed, self._data_dir, CERTIFICATE)
                tls = TlsSettings(made.certfile, made.keyfile, verify_without_fingerprint=False)
                log.info("chat: made our msrps certificate %s", cert)
            self._fingerprint = fingerprint_line(tls.fingerprint())
        except (MsrpError, OSError, ValueError, subprocess.CalledProcessError) as exc:
            log.warning("chat: no msrps (TLS offers get 488): %s", exc)
            return
        self.secure = MsrpEndpoint(self.endpoint.host, 0, tls=tls)
        await self.secure.listen()

    def local_path(self, protocol: str) -> tuple[str, ...]:
        """Our a=path for a new session (SdpError: no path to offer, answer 488)."""
        if not self.ready:
            raise SdpError("MSRP is not ready yet")
        if self.relay is not None:
            wanted = SECURE if self.relay.relay.secure else PLAIN
            if protocol != wanted:
                raise SdpError(f"{protocol} is not offered through our relay, only {wanted}")
            try:
                uri = self.relay.new_uri()
            except MsrpError as exc:
                raise SdpError(str(exc)) from None
            return (*(str(u) for u in self.relay.use_path), str(uri))
        if protocol == PLAIN:
            return (str(self.endpoint.new_uri()),)
        if protocol == SECURE and self.secure is not None:
            return (str(self.secure.new_uri()),)
        raise SdpError(f"{protocol} is not offered here")

    def answer_lines(self, section: MediaSection) -> tuple[str, ...]:
        """Our certificate's fingerprint, in the answer to a direct TLS offer."""
        if section.protocol == SECURE and self.relay is None and self._fingerprint:
            return (self._fingerprint,)
        return ()

    def session(
        self, message: MessageSession, remote_sdp: SessionDescription | None, **options: Any
    ) -> MsrpSession:
        """The MSRP session a negotiated m=message line makes (options:
        `MsrpSession`'s); over TLS the peer's certificate must have the
        fingerprint of `remote_sdp`. Raises `MsrpError` for a malformed one."""
        local = MsrpUri.parse(message.local_path[-1])
        remote = parse_path(" ".join(message.remote_path))
        if self.relay is not None:
            return self.relay.session(remote, local_uri=local, **options)
        if local.secure and self.secure is not None:
            section = message_section(remote_sdp)
            if remote_sdp is not None and section is not None:
                options["remote_fingerprint"] = fingerprint(remote_sdp, section)
            return self.secure.session(local, remote, **options)
        return self.endpoint.session(local, remote, **options)

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
        if self.secure is not None:
            await self.secure.close()
        await self.endpoint.close()


def message_section(sdp: SessionDescription | None) -> MediaSection | None:
    """The live m=message section of a peer's SDP."""
    if sdp is None:
        return None
    return next((m for m in sdp.media if m.kind == "message" and m.port != 0), None)
