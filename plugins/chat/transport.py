"""Where the chat plugin's MSRP runs: one `MsrpEndpoint` on the phone's
address, or sessions through a relay (RFC 4976) when `relay` is set.

Without a relay the endpoint listens on `port` (0: any free one) and our
a=path is one URI of ours. With a relay the plugin AUTHs at start with
`relay_username`/`relay_password`, else the account's credentials, and our
a=path is the relay's Use-Path then our URI on that connection; the relay
client refreshes the grant itself. Until the endpoint listens, or while the
relay is not connected, chat offers get 488 (the path cannot be named).
"""

from __future__ import annotations

import logging
from typing import Any

from phone.api import Credentials, MessageSession, SdpError
from phone.msrp.endpoint import MsrpEndpoint
from phone.msrp.error import MsrpError
from phone.msrp.relay import MsrpRelayClient
from phone.msrp.session import MsrpSession
from phone.msrp.uri import MsrpUri, parse_path

log = logging.getLogger(__name__)

PLAIN = "TCP/MSRP"


class ChatTransport:
    def __init__(self, host: str, port: int, relay: MsrpUri | None) -> None:
        self.endpoint = MsrpEndpoint(host, port)
        self._relay_uri = relay
        self.relay: MsrpRelayClient | None = None
        self.ready = False

    async def start(self, credentials: Credentials | None) -> None:
        """Listen, or AUTH at the relay; raises `MsrpError` when the relay refuses."""
        if self._relay_uri is None:
            await self.endpoint.listen()
        else:
            if credentials is None:
                raise MsrpError(403, "the relay needs credentials: set relay_username/password")
            self.relay = MsrpRelayClient(self.endpoint, self._relay_uri, credentials)
            await self.relay.connect()
        self.ready = True

    def local_path(self, protocol: str) -> tuple[str, ...]:
        """Our a=path for a new session (SdpError: no path to offer, answer 488)."""
        if protocol != PLAIN:
            raise SdpError(f"{protocol} is not offered here, only {PLAIN}")
        if not self.ready:
            raise SdpError("MSRP is not ready yet")
        if self.relay is None:
            return (str(self.endpoint.new_uri()),)
        try:
            uri = self.relay.new_uri()
        except MsrpError as exc:
            raise SdpError(str(exc)) from None
        return (*(str(u) for u in self.relay.use_path), str(uri))

    def session(self, message: MessageSession, **options: Any) -> MsrpSession:
        """The MSRP session a negotiated m=message line makes (options: `MsrpSession`'s)."""
        local = MsrpUri.parse(message.local_path[-1])
        remote = parse_path(" ".join(message.remote_path))
        if self.relay is not None:
            return self.relay.session(remote, local_uri=local, **options)
        return self.endpoint.session(local, remote, **options)

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
        await self.endpoint.close()
