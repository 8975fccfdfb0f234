"""The pjsua2 endpoint, owned by the event loop.

pjsua2 runs in poll mode (no SIP worker threads, `mainThreadOnly`): the loop
calls `libHandleEvents(0)` when one of pjsip's sockets is ready or its next
timer is due (`phone.sip.wakeups`), so every SIP callback runs on the loop
thread and phone state needs no locks. RTP and the conference bridge keep
threads of their own, which never touch loop state: RTP is received on
`MediaPoller`'s thread and the bridge runs on the sound device's clock, each
only while there is a call (`close_sound_when_idle`), so an idle phone wakes
only for SIP.

The start is in two parts, so that the first REGISTER goes out before the
event loop, the board and the phone exist (bench/README.md, start →
registered): `start` needs no loop (the lib, the transport, the request hook,
the account: the REGISTER is sent), `await_registration` may poll pjsip on
this thread for its answer, and `attach` hands pjsip to the loop (the socket
watch, the proxy-only filter, call admission). No request is processed before
`attach`, save while `await_registration` polls, which answers them 503 with
Retry-After.

pjsua is a process-wide singleton: one `SipStack` per process.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from phone import pjproject
from phone.config import AccountConfig, CallsConfig, Transport
from phone.pjproject import LayoutError
from phone.sip.admission import MediaSlots
from phone.sip.layout import self_test
from phone.sip.rawsip import RawSip, Responder
from phone.uri import parse_sip_uri

if TYPE_CHECKING:
    import asyncio

    import pjsua2 as pj

    from phone.sip.account import SipAccount, SipEvents
    from phone.sip.admission import CallAdmission
    from phone.sip.digest import Credentials
    from phone.sip.media_poll import MediaPoller
    from phone.sip.message import SipMessage
    from phone.sip.proxy_only import ProxyOnly
    from phone.sip.registrar_watch import RegistrarWatch
    from phone.sip.services import SipServices
    from phone.sip.subscription import Subscriber
    from phone.sip.wakeups import SipWakeups

log = logging.getLogger(__name__)

# pjsip's timers this late mean the loop no longer polls it: the watchdog stops.
STALL_S = 1.0
# The requests that pjsua or the core would act on, answered 503 while pjsip
# runs with no core to hear them (the rest, in dialogs that do not exist yet,
# pjsip answers 481 itself): `SipStack.await_registration` before the loop,
# and `SipStack.stop` of a stack no phone took. And when they may come again.
REFUSED_WITHOUT_CORE = ("INVITE", "MESSAGE", "SUBSCRIBE", "NOTIFY", "REFER", "OPTIONS")
RETRY_AFTER_WITHOUT_CORE_S = 1


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
    """The local IP address the kernel would use to send to host:port (no packet is
    sent). A SIP URI's host is ASCII (RFC 3261 section 25.1, phone.uri checks
    it): given as bytes, `getaddrinfo` does not load the IDNA codec (with
    `stringprep` and `unicodedata`, 1.3 ms of CPU here) before the first REGISTER."""
    try:
        infos = socket.getaddrinfo(host.encode("ascii"), port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise SipStartError(f"cannot resolve the SIP server {host!r}: {exc}") from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(address)
        return str(probe.getsockname()[0])


class SipStartError(RuntimeError):
    """The SIP stack cannot start (port taken, no TLS, ...): the message says why."""


class SipStack:
    """pjsua2 lib, transports, codecs and the one account, in poll mode."""

    def __init__(
        self,
        account: AccountConfig,
        calls: CallsConfig,
        events: SipEvents | None,
        sip_trace: bool = False,
    ) -> None:
        self.account_config = account
        self.sip_trace = sip_trace  # log every SIP message, credentials masked
        self._trace_writer: object | None = None
        self.calls_config = calls
        self.events = events
        self.pj: Any = import_pjsua2()
        self.ep: pj.Endpoint | None = None
        self.account: SipAccount | None = None
        self.local_port = 0
        self.wakeups: SipWakeups | None = None
        self.media_poller: MediaPoller | None = None
        self._transport_id = -1
        self.raw: RawSip | None = None
        self.media_slots = MediaSlots()
        self.admission: CallAdmission | None = None
        self.proxy_only: ProxyOnly | None = None
        self.services: SipServices | None = None  # what plugins use, through PhoneApi
        self.registrar_watch: RegistrarWatch | None = None

    # -- lifecycle ------------------------------------------------------
    def start(self) -> None:
        """Create the lib, listen, create the account (REGISTER goes out at once),
        without the event loop; `attach` and `start_services` follow."""
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
        if self.sip_trace:
            from phone.sip.trace import enable_trace  # needs pjsua2, imported above

            self._trace_writer = enable_trace(cfg.logConfig)
        cfg.medConfig.clockRate = 16000
        cfg.medConfig.sndClockRate = 16000
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        ep.libInit(cfg)
        self.ep = ep
        self._create_transport()
        ep.libStart()
        ep.audDevManager().setNullDev()
        pjproject.close_sound_when_idle()  # no media clock until a call connects sound
        self._set_codec_priorities()
        self.raw = RawSip(ep)
        try:
            self_test(self.raw)
        except LayoutError as exc:
            raise SipStartError(f"the pjsip request hook failed its self-test: {exc}") from exc
        from phone.sip.account import SipAccount  # needs pjsua2, imported above

        self.account = SipAccount(
            self.account_config,
            transport_id=self._transport_id,
            local_address=self.local_address,
            events=self.events,
            media_slots=self.media_slots,
            on_recovered=self._registration_recovered,
        )
        self.account.start()

    def await_registration(self, limit_s: float) -> None:
        """Poll pjsip on this thread, before the event loop exists, until the first
        REGISTER is answered or `limit_s` has passed: a registrar on the LAN
        answers, challenge included, in a few ms, and the phone is then
        registered while it imports and builds the rest. A request that comes
        meanwhile is answered 503 with Retry-After: its sender tries again once
        the loop runs pjsip, behind the proxy-only filter and call admission."""
        account = self.account
        if account is None or account.direct:
            return
        assert self.ep is not None
        self._refuse_requests(True)
        try:
            deadline = time.monotonic() + limit_s
            while not account.last_code and (left := deadline - time.monotonic()) > 0:
                self.ep.libHandleEvents(max(1, round(left * 1000)))
        finally:
            self._refuse_requests(False)

    def _refuse_requests(self, refuse: bool) -> None:
        """Answer requests 503 (`REFUSED_WITHOUT_CORE`) before the core's request
        handlers and pjsua see them, or no more: while no core would hear them."""
        assert self.raw is not None
        for method in REFUSED_WITHOUT_CORE:
            if refuse:
                self.raw.on_request(method, _come_again)
            else:
                self.raw.remove_handler(method, _come_again)

    def report_to(self, events: SipEvents) -> None:
        """The core hears of SIP events from now on, and at once of the
        registration's answer if it came before."""
        self.events = events
        if self.account is not None:
            self.account.report_to(events)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand pjsip to the event loop: watch its sockets and timers, filter and
        admit requests; every SIP callback runs on the loop from now on."""
        from phone.sip.admission import CallAdmission
        from phone.sip.media_poll import MediaPoller
        from phone.sip.wakeups import SipWakeups

        assert self.raw is not None
        try:
            self.wakeups = SipWakeups(
                self._handle_events, self.local_port, loop, self._calls_changed
            )
        except LayoutError as exc:
            raise SipStartError(f"cannot watch pjsip's sockets: {exc}") from exc
        self.raw.on_transmit = self.wakeups.sent
        self._start_proxy_only(loop)  # before admission: a refused scanner holds no socket
        self.admission = CallAdmission(self.raw, self.media_slots, loop)
        if self.account is not None:
            self.account.attach(loop)
        # Only once the REGISTER is out: stopping pjmedia's worker waits out its
        # poll, up to 10 ms. No call can come before, as the loop has not run.
        self.media_poller = MediaPoller()

    @property
    def attached(self) -> bool:
        """Whether `attach` has handed pjsip to the event loop."""
        return self.wakeups is not None

    def _calls_changed(self, calls: bool) -> None:
        """pjsua has a call, or none: RTP is polled only while it has one."""
        if self.media_poller is not None:
            self.media_poller.serve(calls)

    def start_services(self) -> None:
        """Subscriptions, publications, pager and chat sessions (`SipServices`),
        after `start`: their imports (the payload parsers) wait until the first
        REGISTER is out."""
        import asyncio

        from phone.sip.services import SipServices
        from phone.sip.subscription import Subscriber

        assert self.raw is not None and self.account is not None
        loop = asyncio.get_running_loop()
        subscriber = Subscriber.for_account(
            self.raw, self.account, loop, self._credentials(), self._route()
        )
        self.services = SipServices(self.raw, subscriber)
        self._watch_registrar(subscriber, loop)

    def _start_proxy_only(self, loop: asyncio.AbstractEventLoop) -> None:
        """With a registrar, take requests only from it and the outbound proxy
        (`calls.accept_only_from_proxy`); direct mode accepts everyone."""
        acc = self.account_config
        if acc.registrar is None or not self.calls_config.accept_only_from_proxy:
            return
        from phone.sip.proxy_only import ProxyOnly, server_of

        assert self.raw is not None
        hops = [hop for hop in (acc.registrar, acc.outbound_proxy) if hop is not None]
        servers = [server_of(hop, acc.transport.value) for hop in hops]
        self.proxy_only = ProxyOnly(self.raw, servers, loop)
        self.proxy_only.start()

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
        from phone.sip.digest import Credentials  # hashlib: not before the REGISTER

        acc = self.account_config
        return Credentials(acc.username, acc.password) if acc.password else None

    def _watch_registrar(self, subscriber: Subscriber, loop: asyncio.AbstractEventLoop) -> None:
        """Query our bindings every few seconds (`RegistrarWatch`): register at once
        when the registrar answers again or has lost our binding, and then renew
        the subscriptions, which a restarted server has lost too. Its answers
        also tell the subscriber how the flow to the proxy fares, so no OPTIONS
        probe runs beside it; without a registrar the probe does that."""
        from phone.sip.registrar_watch import RegistrarWatch

        assert self.raw is not None and self.account is not None
        account = self.account
        if account.registrar_uri is None:
            first_hop = self.first_hop  # an outbound proxy without a registrar
            if first_hop is not None:
                subscriber.watch_flow(first_hop)
            return

        def forgotten() -> None:
            subscriber.resubscribe_all("the registrar lost our binding")

        self.registrar_watch = RegistrarWatch(
            self.raw,
            subscriber.identity,
            account.registrar_uri,
            account,
            forgotten,
            subscriber.flow_answered,
            loop,
        )
        self.registrar_watch.start()

    def _registration_recovered(self) -> None:
        """The registrar answers again after failing: it may have restarted and
        lost our subscriptions without telling us, so renew them all."""
        if self.services is not None:
            self.services.subscriber.resubscribe_all("registration recovered")

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

    def _handle_events(self) -> None:
        assert self.ep is not None
        self.ep.libHandleEvents(0)

    def stalled(self) -> str | None:
        """What keeps pjsip from its work, for the watchdog: its timers overdue
        (the loop no longer polls it), or None."""
        late = self.wakeups.overdue() if self.wakeups is not None else 0.0
        return f"pjsip's timers are {late:.1f} s overdue" if late > STALL_S else None

    def call_slots_in_use(self) -> int:
        """pjsua's calls in use (of `maxCalls`): back to 0 once every call has
        ended, else a call slot leaked and the phone will one day refuse calls."""
        if self.ep is None:
            return 0
        return int(pjproject.library().pjsua_call_get_count())

    async def stop(self, before_destroy: Callable[[], None] | None = None) -> None:
        """Unregister, hang up, destroy the lib (in that order, pjsua needs it).

        Every pjsua2 object dies before `libDestroy`, in this order: the calls
        (`SipAccount.release` deletes each `SipCall`'s pjsua2 Call, whoever still
        holds the `SipCall` or the Call), the pjsua account, the caller's own
        objects (`before_destroy`: players, recorders, bridge ports), the request
        hook. What is still referenced then raises when used
        (`phone.sip.lifetime`).
        """
        if self.ep is None:
            return
        if not self.attached:
            # Stopped before the phone handed pjsip to the loop (its board or
            # control interface failed, phone.cli): hand it now, so that the
            # loop polls pjsip for the un-REGISTER's answer. No core hears
            # requests meanwhile: they are refused, first in line (a call
            # would reach pjsua, and the account, with no one to tell).
            import asyncio

            self._refuse_requests(True)
            try:
                self.attach(asyncio.get_running_loop())
            except SipStartError as exc:
                log.warning("SIP stack stopped without un-REGISTER: %s", exc)
        if self.registrar_watch is not None:
            self.registrar_watch.close()
        try:  # the goodbyes may fail; the teardown below must run whatever happens
            if self.services is not None:
                await self.services.close()
            if self.account is not None and self.attached:
                await self.account.unregister()
        finally:
            if self.wakeups is not None:
                self.wakeups.close()
                self.wakeups = None
            if self.media_poller is not None:
                self.media_poller.close()
                self.media_poller = None
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
            if self.proxy_only is not None:
                self.proxy_only.close()
            if self.raw is not None:
                self.raw.close()
            self.ep.libDestroy()
            self.ep = None
        log.info("SIP stack stopped")


def _come_again(request: SipMessage, respond: Responder) -> bool:
    """No core hears requests yet, or any more: 503, come again (RFC 3261
    section 21.5.4)."""
    respond(503, (("Retry-After", str(RETRY_AFTER_WITHOUT_CORE_S)),))
    return True
