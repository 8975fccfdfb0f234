"""A foreign user agent for tests: Debian's baresip 1.0, headless, driven over TCP.

The phone must interoperate with SIP stacks other than its own, so tests call
it from, and take calls from, baresip. Each instance gets a private config
directory (`baresip -f DIR`), its own free SIP port on 127.0.0.1, and no sound
card: a 440 Hz `ausine` source and an `aubridge` player that nothing reads
(a paced null sink). It is driven through the `ctrl_tcp` module: JSON commands
and events framed as netstrings.

Registration happens within milliseconds of start, before the control
connection is up, so its outcome is read from baresip's console output; later
registrations arrive as REGISTER_OK/REGISTER_FAIL events.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from tests.peers import ports
from tests.peers.kamailio import Kamailio
from tests.peers.ports import LISTEN_IP
from tests.peers.process import PeerError, PeerProcess

log = logging.getLogger(__name__)

APT_LINE = "apt-get install -y --no-install-recommends baresip"
MODULE_DIR = Path("/usr/lib/baresip/modules")

# "alice@example.test: {0/UDP/v4} 200 OK () [1 binding]"
REGISTERED_LINE = re.compile(r"^\S+@\S+: \{\d+/\w+/v\d\} 200 ")
# "reg: sip:alice@example.test: 401 Unauthorized ()"
REGISTER_FAILED_LINE = re.compile(r"^reg: \S+: (?P<status>\d{3} .*)$")
# A line of the `contacts` command: ">     Online  <sip:bob@example.test>"
CONTACT_LINE = re.compile(r"^>?\s*(?P<status>\w+)\s+<(?P<uri>[^>]+)>")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
CONTROL_CONNECT_TIMEOUT = 5.0
# How long a stopping baresip may wait for its un-REGISTER to be answered.
UNREGISTER_WAIT = 0.5


class BaresipError(PeerError):
    """baresip failed to start, register or carry out a command."""


class Presence(StrEnum):
    """The states baresip's `presence` module can publish (PIDF basic status, RFC 3863)."""

    ONLINE = "online"
    OFFLINE = "offline"


@dataclass
class BaresipEvent:
    """One `ctrl_tcp` event, e.g. CALL_INCOMING, CALL_ESTABLISHED, CALL_CLOSED."""

    type: str
    received_at: float
    fields: dict[str, Any] = field(default_factory=dict)


class Baresip(PeerProcess):
    """One baresip process with one account.

    With `registrar`, the account is `user`'s on that Kamailio (digest
    credentials from its user table unless `password` is given) and routes
    everything through it. Without, it is a local account that does not
    register and is reached directly at `contact_uri`. `watch` lists URIs whose
    presence it subscribes to through the registrar (`wait_presence`).
    """

    error = BaresipError
    # The first SIGTERM makes baresip un-REGISTER and wait for the answers,
    # which never come when the registrar is already gone; a second SIGTERM
    # makes it exit at once.
    stop_signals = ((signal.SIGTERM, UNREGISTER_WAIT), (signal.SIGTERM, None))
    # baresip 1.0 now and then dies of SIGSEGV while it stops: mem_deref called
    # from its presence module (core dump backtrace, ~1 stop in 40 here). Dying
    # before the stop is still an error.
    exits_cleanly = False

    def __init__(
        self,
        user: str,
        registrar: Kamailio | None = None,
        *,
        password: str | None = None,
        transport: str = "udp",
        auto_answer: bool = False,
        publish_presence: bool = True,
        register_interval: int = 300,
        watch: Sequence[str] = (),
    ) -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError(f"transport must be udp or tcp, not {transport!r}")
        if registrar is not None and password is None:
            password = registrar.users.get(user)
            if password is None:
                raise ValueError(f"{user!r} is not a user of this Kamailio")
        super().__init__(f"baresip {user}")
        self.user = user
        self.registrar = registrar
        self.password = password
        self.transport = transport
        self.auto_answer = auto_answer
        self.publish_presence = publish_presence
        self.register_interval = register_interval
        self.watch = tuple(watch)
        self.config_dir: Path | None = None
        self.sip_port: int | None = None
        self.control_port: int | None = None
        self.started_at: float | None = None
        self.registered_at: float | None = None
        self.register_failure: str | None = None
        self.events: list[BaresipEvent] = []
        self._control: socket.socket | None = None
        self._changed = threading.Condition()
        self._responses: dict[str, dict[str, Any]] = {}
        self._next_token = 0

    @property
    def aor(self) -> str:
        """The account's address of record."""
        if self.registrar is not None:
            return self.registrar.uri(self.user)
        return f"sip:{self.user}@{LISTEN_IP}"

    @property
    def contact_uri(self) -> str:
        """Where this baresip listens, for calling it without a registrar."""
        if self.sip_port is None:
            raise BaresipError("baresip has not been started")
        return f"sip:{self.user}@{LISTEN_IP}:{self.sip_port};transport={self.transport}"

    @property
    def log_path(self) -> Path:
        if self.config_dir is None:
            raise BaresipError("baresip has not been started")
        return self.config_dir / "baresip.log"

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Write the config, start baresip and connect to its control port.

        The ports are free when chosen but may be taken before baresip binds
        them (other test runs share the machine), so a bind failure is retried
        with new ones.
        """
        if self.running:
            raise BaresipError(f"baresip is already running (PID {self.pid})")
        binary = shutil.which("baresip")
        if binary is None:
            raise BaresipError(f"baresip is not installed; install: {APT_LINE}")
        if self.config_dir is None:
            self.config_dir = Path(tempfile.mkdtemp(prefix=f"baresip-{self.user}-"))
        self._start_on_free_ports(lambda: self._launch(binary))

    def stop(self, timeout: float = 3.0) -> int | None:
        """SIGTERM, so baresip unregisters; a second SIGTERM, SIGKILL after `timeout`."""
        status = super().stop(timeout)
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.shutdown(socket.SHUT_RDWR)
            self._control.close()
            self._control = None
        for thread in self._readers:
            thread.join(timeout)
        self._readers.clear()
        return status

    def _remove_files(self) -> None:
        if self.config_dir is not None:
            shutil.rmtree(self.config_dir, ignore_errors=True)
            self.config_dir = None

    # -- what tests do with it ---------------------------------------------

    def wait_registered(self, timeout: float = 5.0) -> float:
        """Block until the registrar accepted the REGISTER; returns its monotonic time."""
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    self.registered_at is not None
                    or self.register_failure is not None
                    or not self.running
                ),
                timeout,
            )
            if self.registered_at is not None:
                return self.registered_at
            if self.register_failure is not None:
                raise BaresipError(f"{self.aor} registration failed: {self.register_failure}")
        raise BaresipError(
            f"{self.aor} not registered after {timeout:.1f} s (running={self.running});"
            f" {self.log_since_start()}"
        )

    def wait_event(self, event_type: str, timeout: float = 5.0, *, after: int = 0) -> BaresipEvent:
        """The first event of `event_type` at index >= `after` in `events`, waiting for it."""

        def found() -> BaresipEvent | None:
            return next((e for e in self.events[after:] if e.type == event_type), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or not self.running, timeout)
            event = found()
        if event is None:
            raise BaresipError(
                f"no {event_type} event from baresip ({self.aor}) within {timeout:.1f} s;"
                f" seen: {[e.type for e in self.events[after:]]}"
            )
        return event

    def watched_presence(self) -> dict[str, str]:
        """Watched URI -> what baresip last heard (Unknown, Online, Offline, Busy...).

        baresip subscribes to each `watch` URI (RFC 3856) through the registrar
        and prints a status change only after the first NOTIFY, so the state is
        read from its contact list instead.
        """
        listing = ANSI_ESCAPE.sub("", self.command("contacts"))
        return {
            match["uri"]: match["status"]
            for line in listing.splitlines()
            if (match := CONTACT_LINE.match(line.strip()))
        }

    def wait_presence(self, uri: str, status: str, timeout: float = 5.0) -> None:
        """Block until baresip shows `status` (case-insensitive) for the watched `uri`."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.watched_presence().get(uri)
            if seen is not None and seen.lower() == status.lower():
                return
            time.sleep(0.05)
        raise BaresipError(f"{self.aor} sees {uri} as {seen}, not {status}, after {timeout:.1f} s")

    def dial(self, uri: str) -> str:
        """Start a call to `uri`."""
        return self.command("dial", uri)

    def answer(self) -> str:
        """Accept the ringing incoming call."""
        return self.command("accept")

    def hangup(self) -> str:
        """End (or reject, or cancel) the current call."""
        return self.command("hangup")

    def presence(self, status: Presence | str) -> str:
        """Publish `status` (PUBLISH to the registrar, RFC 3903) via the presence module."""
        return self.command(f"presence_{Presence(status).value}")

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> str:
        """Run one baresip command; returns its text answer, raises when it fails."""
        if self._control is None:
            raise BaresipError("baresip has not been started")
        with self._changed:
            self._next_token += 1
            token = f"t{self._next_token}"
        body = json.dumps({"command": name, "params": params, "token": token}).encode()
        self._control.sendall(str(len(body)).encode() + b":" + body + b",")
        with self._changed:
            self._changed.wait_for(lambda: token in self._responses or not self.running, timeout)
            response = self._responses.pop(token, None)
        if response is None:
            raise BaresipError(f"baresip gave no answer to {name!r} within {timeout:.1f} s")
        data = str(response.get("data", ""))
        if not response.get("ok", False):
            raise BaresipError(f"baresip command {name!r} {params!r} failed: {data.strip()}")
        return data

    # -- internals ---------------------------------------------------------

    def _launch(self, binary: str) -> None:
        self.sip_port, self.control_port = ports.free_ports("udp+tcp", "tcp")
        self._write_config()
        self.registered_at = None
        self.register_failure = None
        self.started_at = time.monotonic()
        process = self._spawn(
            [binary, "-f", str(self.config_dir)], self.log_path, cwd=self.config_dir, console=True
        )
        assert process.stdout is not None
        self._thread(self._read_console, process.stdout)
        self._wait_ready(self._connect_control, CONTROL_CONNECT_TIMEOUT)
        assert self._control is not None
        self._thread(self._read_control, self._control)
        log.info(
            "baresip PID %d for %s: SIP %s:%d/%s, control port %d",
            process.pid,
            self.aor,
            LISTEN_IP,
            self.sip_port,
            self.transport,
            self.control_port,
        )

    def _write_config(self) -> None:
        assert self.config_dir is not None
        lines = [
            "poll_method epoll",
            f"sip_listen {LISTEN_IP}:{self.sip_port}",
            f"net_interface {LISTEN_IP}",
            # ausine only produces 48 kHz stereo; baresip resamples for the codec.
            "audio_source ausine,440",
            "ausrc_srate 48000",
            "ausrc_channels 2",
            "audio_player aubridge,sink",
            "audio_alert aubridge,sink",
            "statmode_default off",
            f"module_path {MODULE_DIR}",
            "module g711.so",
            "module aubridge.so",
            "module ausine.so",
            "module_tmp account.so",
            "module_app menu.so",
            "module_app contact.so",
            "module_app presence.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {LISTEN_IP}:{self.control_port}",
        ]
        (self.config_dir / "config").write_text("\n".join(lines) + "\n")
        (self.config_dir / "accounts").write_text(self._account_line() + "\n")
        # In baresip 1.0 only contacts marked presence=p2p are subscribed to; the
        # SUBSCRIBE still goes through the account's outbound proxy.
        (self.config_dir / "contacts").write_text(
            "".join(f"<{uri}>;presence=p2p\n" for uri in self.watch)
        )

    def _account_line(self) -> str:
        """The account in baresip's `accounts` syntax: <aor>;param=value..."""
        params = [f"answermode={'auto' if self.auto_answer else 'manual'}"]
        if self.registrar is not None:
            params += [
                f"auth_pass={self.password}",
                f'outbound="{self.registrar.registrar_uri};transport={self.transport}"',
                f"regint={self.register_interval}",
                f"pubint={self.register_interval if self.publish_presence else 0}",
            ]
            return f"<{self.aor};transport={self.transport}>;" + ";".join(params)
        params += ["regint=0", "pubint=0"]
        return f"<{self.aor}:{self.sip_port};transport={self.transport}>;" + ";".join(params)

    def _thread(self, target: Callable[[Any], None], arg: Any) -> None:
        thread = threading.Thread(
            target=target, args=(arg,), daemon=True, name=f"baresip-{self.user}"
        )
        thread.start()
        self._readers.append(thread)

    def _connect_control(self) -> bool:
        """Whether the control port took a connection (then kept in `_control`)."""
        assert self.control_port is not None
        try:
            self._control = socket.create_connection((LISTEN_IP, self.control_port), timeout=1.0)
        except OSError:
            return False
        return True

    def _read_console(self, stream: IO[bytes]) -> None:
        """Copy console output to the log file, noting the first registration outcome."""
        assert self.config_dir is not None
        with self.log_path.open("ab") as out:
            for raw in stream:
                out.write(raw)
                out.flush()
                line = ANSI_ESCAPE.sub("", raw.decode(errors="replace")).strip()
                if REGISTERED_LINE.match(line):
                    self._registered(time.monotonic())
                elif failed := REGISTER_FAILED_LINE.match(line):
                    self._register_failed(failed["status"])
        with self._changed:
            self._changed.notify_all()

    def _read_control(self, sock: socket.socket) -> None:
        """Split the control stream into netstrings: responses by token, events in order."""
        buffer = b""
        sock.settimeout(None)
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buffer += chunk
            while True:
                length, colon, rest = buffer.partition(b":")
                if not colon or not length.isdigit() or len(rest) < int(length) + 1:
                    break
                size = int(length)
                payload, buffer = rest[:size], rest[size + 1 :]
                try:
                    message = json.loads(payload)
                except ValueError:
                    log.error(
                        "baresip %s sent a control frame that is not JSON: %r", self.user, payload
                    )
                    continue
                if isinstance(message, dict):
                    self._on_message(message)
        with self._changed:
            self._changed.notify_all()

    def _on_message(self, message: dict[str, Any]) -> None:
        now = time.monotonic()
        if message.get("response"):
            with self._changed:
                self._responses[str(message.get("token"))] = message
                self._changed.notify_all()
            return
        if not message.get("event"):
            return
        event = BaresipEvent(type=str(message.get("type")), received_at=now, fields=message)
        log.debug("baresip %s event %s %s", self.user, event.type, message.get("param", ""))
        if event.type == "REGISTER_OK":
            self._registered(now)
        elif event.type == "REGISTER_FAIL":
            self._register_failed(str(message.get("param", "")))
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def _registered(self, when: float) -> None:
        with self._changed:
            if self.registered_at is None:
                self.registered_at = when
                self.register_failure = None
                assert self.started_at is not None
                log.info(
                    "baresip %s registered %.0f ms after start",
                    self.aor,
                    (when - self.started_at) * 1000,
                )
            self._changed.notify_all()

    def _register_failed(self, status: str) -> None:
        with self._changed:
            if self.registered_at is None:
                self.register_failure = status
                log.warning("baresip %s registration failed: %s", self.aor, status)
            self._changed.notify_all()
