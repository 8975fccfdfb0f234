"""The pjsua2 endpoint, owned by the event loop.

pjsua2 runs in poll mode (no SIP worker threads, `mainThreadOnly`): a loop task
calls `libHandleEvents(0)` every few milliseconds, so every SIP callback runs
on the loop thread and phone state needs no locks. RTP and the conference
bridge keep their own pjmedia threads (the null sound device's clock), which
never touch loop state.

pjsua is a process-wide singleton: one `SipStack` per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from phone.config import AccountConfig, CallsConfig, Transport
from phone.sip.admission import CallAdmission, MediaSlots
from phone.sip.chat_session import ChatSession, ChatSessions
from phone.sip.digest import Credentials
from phone.sip.packages import EventPackage
from phone.sip.publication import Publication
from phone.sip.rawsip import LayoutError, RawSip
from phone.sip.subscription import (
    Subscriber,
)
from phone.uri import parse_sip_uri

if TYPE_CHECKING:
    import pjsua2 as pj

    from phone.sip.account import SipAccount
    from phone.sip.call import SipCall

log = logging.getLogger(__name__)

# Poll fast while SIP traffic flows, slower when quiet: an asyncio wake-up costs
# ~190 µs of CPU on these VMs, so a fixed 4 ms poll took 2.6% of a core on an
# idle phone. The first packet after a quiet spell waits up to POLL_IDLE_S.
POLL_BUSY_S = 0.003
POLL_IDLE_S = 0.020
BUSY_FOR_S = 1.0  # stay fast this long after the last SIP event


class PjsuaMissing(RuntimeError):
    """pjsua2 cannot be imported: say what to install instead of a traceback."""


def import_pjsua2() -> object:
    try:
        import pjsua2
    except ImportError as exc:
        raise PjsuaMissing(
            "pjsua2 is not installed. On x86_64: pip install pjsua2-python==2.15.1.post1. "
            "On a Raspberry Pi the SD image builds pjproject and its Python bindings "
            f"(see image/README.md). ({exc})"
        ) from exc
    return pjsua2


def route_source(host: str, port: int) -> str:
    """The local IP address the kernel would use to send to host:port (no packet is sent)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise SipStartError(f"cannot resolve the SIP server {host!r}: {exc}") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(address)
        return str(probe.getsockname()[0])


class SipStartError(RuntimeError):
    """The SIP stack cannot start (port taken, no TLS, ...): the message says why."""


class SipEvents(Protocol):
    """What the SIP layer reports to the core (all on the loop thread)."""

    def registration_changed(self, registered: bool, code: int, reason: str) -> None: ...

    def incoming_call(self, call: SipCall) -> None: ...

    def call_changed(self, call: SipCall) -> None: ...

    def call_media_ready(self, call: SipCall) -> None: ...


class SipStack:
    """pjsua2 lib, transports, codecs and the one account, in poll mode."""

    def __init__(self, account: AccountConfig, calls: CallsConfig, events: SipEvents) -> None:
        self.account_config = account
        self.calls_config = calls
        self.events = events
        self.pj: Any = import_pjsua2()
        self.ep: pj.Endpoint | None = None
        self.account: SipAccount | None = None
        self.local_port = 0
        self._poller: asyncio.Task[None] | None = None
        self._busy_until = 0.0
        self._transport_id = -1
        self.raw: RawSip | None = None
        self.media_slots = MediaSlots()
        self.admission: CallAdmission | None = None
        self.subscriber: Subscriber | None = None
        self._chats: ChatSessions | None = None
        self._publications: list[Publication] = []

    # -- lifecycle ------------------------------------------------------
    def start(self) -> None:
        """Create the lib, listen, create the account (REGISTER goes out at once)."""
        pj = self.pj
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 4
        cfg.uaConfig.userAgent = "simplephone/0.1"
        cfg.logConfig.level = 1
        cfg.logConfig.consoleLevel = 1
        cfg.medConfig.clockRate = 16000
        cfg.medConfig.sndClockRate = 16000
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        ep.libInit(cfg)
        self.ep = ep
        self._create_transport()
        ep.libStart()
        ep.audDevManager().setNullDev()
        self._set_codec_priorities()
        self.lib = ctypes.CDLL(self.pj._pjsua2.__file__)
        self.raw = RawSip(ep, self.lib)
        try:
            self.raw.self_test()
        except LayoutError as exc:
            raise SipStartError(f"the pjsip request hook failed its self-test: {exc}") from exc
        loop = asyncio.get_running_loop()
        self.admission = CallAdmission(self.raw, self.media_slots, loop)
        from phone.sip.account import SipAccount  # needs pjsua2, imported above

        self.account = SipAccount(self)
        self.account.start()
        self.subscriber = Subscriber.for_account(
            self.raw, self.account, loop, self._credentials(), self._route()
        )
        first_hop = self.first_hop
        if first_hop is not None:
            self.subscriber.watch_flow(first_hop)
        self._poller = loop.create_task(self._poll(), name="pjsua-poll")

    def _create_transport(self) -> None:
        pj = self.pj
        assert self.ep is not None
        acc = self.account_config
        kind = {
            Transport.UDP: pj.PJSIP_TRANSPORT_UDP,
            Transport.TCP: pj.PJSIP_TRANSPORT_TCP,
            Transport.TLS: pj.PJSIP_TRANSPORT_TLS,
        }[acc.transport]
        tcfg = pj.TransportConfig()
        tcfg.port = acc.port
        tcfg.boundAddress = tcfg.publicAddress = self.local_address
        if acc.transport is Transport.TLS:
            tcfg.tlsConfig.verifyServer = acc.tls_verify
            if acc.tls_ca_file:
                tcfg.tlsConfig.CaListFile = acc.tls_ca_file
        try:
            self._transport_id = self.ep.transportCreate(kind, tcfg)
        except pj.Error as exc:
            raise SipStartError(
                f"cannot listen for SIP on {acc.transport.value} port {acc.port}: {exc.reason}"
            ) from exc
        if acc.transport is Transport.TLS:
            # The request hook's self-test talks to our own UDP or TCP transport.
            probe = pj.TransportConfig()
            probe.boundAddress = "127.0.0.1"
            self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, probe)
        info = self.ep.transportGetInfo(self._transport_id)
        self.local_port = int(info.localName.rsplit(":", 1)[1])
        log.info("SIP listening on %s %s", acc.transport.value, info.localName)

    def _set_codec_priorities(self) -> None:
        """Only the configured codecs, in order: speex garbles tones and long SDP breaks pjsua."""
        assert self.ep is not None
        wanted = [name.lower() for name in self.calls_config.codecs]
        for codec in self.ep.codecEnum2():
            codec_id = codec.codecId.lower()  # e.g. "g722/16000/1"
            rank = next(
                (
                    i
                    for i, name in enumerate(wanted)
                    if codec_id == name or codec_id.startswith(name + "/")
                ),
                None,
            )
            self.ep.codecSetPriority(codec.codecId, 0 if rank is None else 255 - rank)
        enabled = [n for n in self.calls_config.codecs]
        log.info("codecs: %s", ", ".join(enabled))

    @property
    def first_hop(self) -> str | None:
        """Where out-of-dialog requests go: the outbound proxy, else the registrar."""
        acc = self.account_config
        hop = acc.outbound_proxy or acc.registrar
        if hop is None:
            return None
        if acc.transport is not Transport.UDP and ";transport=" not in hop.lower():
            hop = f"{hop};transport={acc.transport.value}"
        return hop

    def _route(self) -> tuple[str, ...]:
        hop = self.first_hop
        return () if hop is None else (f"<{hop};lr>",)

    def _credentials(self) -> Credentials | None:
        acc = self.account_config
        return Credentials(acc.username, acc.password) if acc.password else None

    def registration_recovered(self) -> None:
        """The registrar answers again after failing: it may have restarted and
        lost our subscriptions without telling us, so renew them all."""
        if self.subscriber is not None:
            self.subscriber.resubscribe_all("registration recovered")

    # -- what plugins use (through phone.api.PhoneApi) -------------------------
    def publish(
        self, event: EventPackage | str, content_type: str, *, expires: int = 600
    ) -> Publication:
        """A publication of our own `event` state (RFC 3903); `publish(body)` on it
        sends. It refreshes itself and is removed (Expires: 0) when the phone stops."""
        assert self.raw is not None and self.subscriber is not None, "publish() before start"
        publication = Publication(
            self.raw,
            self.subscriber.identity,
            asyncio.get_running_loop(),
            str(EventPackage(event)),
            content_type,
            expires,
        )
        self._publications.append(publication)
        return publication

    def chat_sessions(
        self,
        local_path: Callable[[str], tuple[str, ...]],
        on_session: Callable[[ChatSession], None],
        on_end: Callable[[ChatSession], None],
    ) -> ChatSessions:
        """Start answering chat-only INVITEs (m=message only, as Blink sends).

        Called by the plugin that carries MSRP; until then such offers get 488.
        If pjsip's layout fails the checks, `available` is False, the reason is
        logged, and offers keep getting 488.
        """
        assert self.raw is not None and self.account is not None
        if self._chats is not None:
            raise RuntimeError("chat sessions are already taken by another plugin")
        contact = self.raw.account_contact(self.account.getId(), self.account_config.uri)
        self._chats = ChatSessions(
            self.raw, self.lib, asyncio.get_running_loop(), contact, local_path, on_session, on_end
        )
        if not self._chats.available:
            log.error("chat-only sessions are off: %s", self._chats.unavailable_reason)
        return self._chats

    @property
    def local_address(self) -> str:
        """The address peers reach us at, for Via, Contact and SDP.

        Direct mode: the host of our own URI. Registered: the local address the
        kernel routes towards the first hop (outbound proxy, else registrar), so
        a loopback server gets a loopback Contact and a LAN server a LAN one.
        """
        acc = self.account_config
        if acc.registrar is None:
            return parse_sip_uri(acc.uri).host.strip("[]")
        hop = parse_sip_uri(acc.outbound_proxy or acc.registrar)
        return route_source(hop.host.strip("[]"), hop.port or 5060)

    @property
    def transport_id(self) -> int:
        return self._transport_id

    async def _poll(self) -> None:
        assert self.ep is not None
        ep = self.ep
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if ep.libHandleEvents(0) > 0:
                self._busy_until = now + BUSY_FOR_S
            await asyncio.sleep(POLL_BUSY_S if now < self._busy_until else POLL_IDLE_S)

    def wake(self) -> None:
        """The phone just sent something: poll fast for the answer."""
        self._busy_until = asyncio.get_running_loop().time() + BUSY_FOR_S

    async def pump_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Let SIP run until `done()` or `timeout` (used at shutdown)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def stop(self, before_destroy: Callable[[], None] | None = None) -> None:
        """Unregister, hang up, destroy the lib (in that order, pjsua needs it).

        `before_destroy` releases the caller's own pjsua2 objects (players,
        recorders), which must die before the lib does.
        """
        if self.ep is None:
            return
        if self._publications:
            await asyncio.gather(*(p.close() for p in self._publications))
        if self.subscriber is not None:
            await self.subscriber.close()  # Expires: 0 while still registered
        if self._chats is not None:
            self._chats.close()
        if self.account is not None:
            await self.account.unregister()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        self.ep.hangupAllCalls()
        for _ in range(20):
            self.ep.libHandleEvents(5)
        if self.account is not None:
            self.account.release()
            self.account = None
        if before_destroy is not None:
            before_destroy()
        if self.admission is not None:
            self.admission.close()
        if self.raw is not None:
            self.raw.close()
        self.ep.libDestroy()
        self.ep = None
        log.info("SIP stack stopped")
