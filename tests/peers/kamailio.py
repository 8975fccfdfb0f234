"""A real SIP SIMPLE provider for tests: Kamailio 5.6 on loopback.

One Kamailio process plays registrar (RFC 3261 section 10), presence server
(RFC 3856/3903), RLS (RFC 4662), XCAP server (RFC 4825) and MSRP relay
(RFC 4976), as a provider does for a Blink user. Each instance renders
`kamailio/kamailio.cfg.in` into its own temporary run directory with ports the
OS reports free, so several engineers' test runs can share one machine. The
pitfalls of the packaged Kamailio that shaped the config are in
`kamailio/README.md`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.peers import ports
from tests.peers.ports import LISTEN_IP
from tests.peers.process import START_ATTEMPTS, PeerError, PeerProcess

log = logging.getLogger(__name__)

DOMAIN = "example.test"
DEFAULT_USERS: Mapping[str, str] = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}

APT_PACKAGES = (
    "kamailio",
    "kamailio-presence-modules",
    "kamailio-sqlite-modules",
    "kamailio-xml-modules",
)
APT_LINE = "apt-get install -y --no-install-recommends " + " ".join(APT_PACKAGES)

PEER_DIR = Path(__file__).with_name("kamailio")
CONFIG_TEMPLATE = PEER_DIR / "kamailio.cfg.in"
XCAP_EXAMPLES = PEER_DIR / "xcap"
# The RLS service of `kamailio/xcap/alice-rls-services.xml` over alice's list "friends".
BUDDY_LIST_URI = f"sip:alice-buddies@{DOMAIN}"
SQLITE_SCHEMA_DIR = Path("/usr/share/kamailio/db_sqlite")
DBTEXT_SCHEMA_DIR = Path("/usr/share/kamailio/dbtext/kamailio")

# SQLite keeps only what Kamailio reads and writes one at a time (subscriber,
# xcap); the presence, pua and rls state tables live in db_text because rls
# crashes on SQLite in 5.6.3 (see kamailio/README.md).
SQLITE_SCHEMAS = ("standard", "auth_db", "usrloc", "presence", "rls")
DBTEXT_TABLES = (
    "presentity",
    "active_watchers",
    "watchers",
    "pua",
    "rls_presentity",
    "rls_watchers",
)
# Dialog state that a restart loses (see `Kamailio.restart`).
SUBSCRIPTION_TABLES = ("active_watchers", "pua", "rls_presentity", "rls_watchers")
# Columns with an SQL DEFAULT that the db_text schema declares NOT NULL, and
# that presence omits on insert ("null value not allowed").
DBTEXT_NULLABLE = {"active_watchers": "flags(int)", "presentity": "priority(int)"}


class KamailioError(PeerError):
    """Kamailio could not start (the message carries its log tail), or was used unstarted."""


@dataclass(frozen=True)
class KamailioPorts:
    """The loopback ports one instance listens on; SIP uses `sip` for UDP and TCP."""

    sip: int
    xcap: int
    msrp: int
    tls: int


def kamailio_binary() -> str | None:
    """The path of the kamailio executable, or None when the package is missing."""
    # A non-root PATH often lacks /usr/sbin, where the package puts it.
    return shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")


# kamcmd talks to the ctl socket; a non-root PATH often lacks /usr/sbin.
KAMCMD = shutil.which("kamcmd") or shutil.which("kamcmd", path="/usr/sbin:/sbin") or "kamcmd"


def _module_dir() -> Path:
    """Kamailio's module directory for this machine's multiarch triplet."""
    for candidate in sorted(Path("/usr/lib").glob("*/kamailio/modules")):
        if (candidate / "presence.so").exists():
            return candidate
    raise KamailioError(f"no Kamailio module directory with presence.so; install: {APT_LINE}")


def self_signed_certificate(key: Path, certificate: Path, name: str, ip: str | None = None) -> None:
    """A new key and a self-signed certificate for CN `name` (and subjectAltName `ip`)."""
    args = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    args += ["-subj", f"/CN={name}", "-keyout", str(key), "-out", str(certificate)]
    if ip is not None:
        args += ["-addext", f"subjectAltName=IP:{ip}"]
    subprocess.run(args, check=True, capture_output=True)


def sip_options(
    port: int, *, transport: str = "udp", timeout: float = 0.2, host: str = LISTEN_IP
) -> str | None:
    """Send one out-of-dialog OPTIONS to the server itself and return the status line.

    Kamailio answers an OPTIONS whose Request-URI has no user with 200
    Keepalive (see `request_route`); None means no answer within `timeout`.
    """
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(timeout)
        try:
            if transport == "udp":
                sock.bind((host, 0))
            else:
                sock.connect((host, port))
        except OSError:
            return None
        local_port = sock.getsockname()[1]
        branch = "z9hG4bK" + secrets.token_hex(8)
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport.upper()} {host}:{local_port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{DOMAIN}>;tag={branch[7:]}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {branch}@{host}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        try:
            if transport == "udp":
                sock.sendto(request, (host, port))
            else:
                sock.sendall(request)
            data = sock.recv(65535)
        except OSError:
            return None
    return data.decode(errors="replace").split("\r\n", 1)[0] or None


def _tcp_listening(port: int, host: str = LISTEN_IP) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Kamailio(PeerProcess):
    """One Kamailio instance with its own run directory, ports, users and DBs.

    The ports are chosen by the first `start()` and kept by `restart()`, which
    also keeps the DBs (XCAP documents, presence state), so tests can kill the
    server under registered clients and watch them recover.
    """

    error = KamailioError
    # Kamailio 5.6's own shutdown fails now and then, mostly under load: its
    # main process waits for a TCP main process that never exits (the stop
    # ends in SIGKILL), or dies of SIGSEGV in its clean-up after "Thank you for
    # flying kamailio". Dying before the stop is still an error.
    exits_cleanly = False

    def __init__(
        self,
        extra_users: Mapping[str, str] | None = None,
        *,
        qop: bool = True,
        authenticate_requests: bool = True,
        tls: bool = False,
        nat: bool = False,
        tcp_read_buffer: int = 16384,
        start_timeout: float = 10.0,
        listen_ip: str = LISTEN_IP,
    ) -> None:
        """`qop=False` starts with `-A NO_QOP` (RFC 2069-style challenges);
        `authenticate_requests=False` with `-A NO_AUTH_REQUESTS` (only REGISTER
        and XCAP are challenged); `tls=True` adds a SIP TLS listener (`tls_port`)
        with a self-signed certificate for 127.0.0.1 (`tls_certificate`, which a
        client trusts as its CA); `nat=True` starts with `-A WITH_NAT`, for
        clients behind NAT (nathelper: a REGISTER's source address is kept as
        its binding's `received`, Contacts of dialogs are rewritten to the
        source; see route[NATDETECT]); `tcp_read_buffer` is the largest TCP message
        (XCAP PUT, MSRP frame) read, 16 kB as packaged; `listen_ip` is the one
        address it listens on (another than loopback for a phone in a network
        namespace, tests/faults)."""
        super().__init__("kamailio")
        users = dict(DEFAULT_USERS)
        for name, password in (extra_users or {}).items():
            if not name or ":" in name or "'" in name:
                raise ValueError(f"unusable SIP user name {name!r}")
            users[name] = password
        self._users = users
        self.qop = qop
        self.authenticate_requests = authenticate_requests
        self.tls = tls
        self.nat = nat
        self.tcp_read_buffer = tcp_read_buffer
        self.start_timeout = start_timeout
        self.listen_ip = listen_ip
        self.domain = DOMAIN
        self.run_dir: Path | None = None
        self._ports: KamailioPorts | None = None
        self.start_seconds: float | None = None

    # -- what clients need -------------------------------------------------

    @property
    def ports(self) -> KamailioPorts:
        if self._ports is None:
            raise KamailioError("Kamailio has not been started, so it has no ports yet")
        return self._ports

    @property
    def sip_port(self) -> int:
        return self.ports.sip

    @property
    def xcap_port(self) -> int:
        return self.ports.xcap

    @property
    def msrp_port(self) -> int:
        return self.ports.msrp

    @property
    def registrar_uri(self) -> str:
        return f"sip:{self.listen_ip}:{self.sip_port}"

    @property
    def xcap_root(self) -> str:
        return f"http://{self.listen_ip}:{self.xcap_port}/xcap-root"

    @property
    def msrp_relay_uri(self) -> str:
        return f"msrp://{self.listen_ip}:{self.msrp_port};tcp"

    @property
    def users(self) -> dict[str, str]:
        """User name -> password (a copy)."""
        return dict(self._users)

    @property
    def log_path(self) -> Path:
        if self.run_dir is None:
            raise KamailioError("Kamailio has not been started, so it has no log yet")
        return self.run_dir / "kamailio.log"

    def uri(self, user: str) -> str:
        """The address of record of `user` (RFC 3261 section 10.2.1)."""
        return f"sip:{user}@{self.domain}"

    def xcap_url(self, user: str, auid: str, document: str = "index") -> str:
        """The URL of `user`'s XCAP document of application `auid` (RFC 4825 section 6)."""
        return f"{self.xcap_root}/{auid}/users/{self.uri(user)}/{document}"

    def xcap_put(self, user: str, auid: str, document: bytes, name: str = "index") -> str:
        """PUT `document` as `user` (Digest, no precondition), as another client
        (Blink, a web portal) would; returns the new ETag."""
        auth = httpx.DigestAuth(user, self._users[user])
        url = self.xcap_url(user, auid, name)
        response = httpx.put(url, content=document, auth=auth, timeout=5.0)
        assert response.status_code in (200, 201), (url, response.status_code, response.text)
        return response.headers["etag"]

    def xcap_example(self, name: str) -> bytes:
        """An example XCAP document from `kamailio/xcap/`, pointing at this server."""
        text = (XCAP_EXAMPLES / f"{name}.xml").read_text(encoding="utf-8")
        return text.replace("@XCAP_ROOT@", self.xcap_root).encode()

    def allow_watchers(self, *users: str) -> None:
        """Let every local user watch each of `users` (their pres-rules, RFC 5025)."""
        for user in users:
            self.xcap_put(user, "pres-rules", self.xcap_example("allow-local-pres-rules"))

    def put_buddy_list(self, users: Iterable[str]) -> str:
        """alice's RLS list of `users` (RFC 4826 documents); returns the URI to subscribe to."""
        entries = "".join(f'<entry uri="{self.uri(user)}"/>' for user in users)
        lists = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
            f'<list name="friends">{entries}</list></resource-lists>'
        )
        self.xcap_put("alice", "resource-lists", lists.encode())
        self.xcap_put("alice", "rls-services", self.xcap_example("alice-rls-services"))
        return BUDDY_LIST_URI

    def bindings(self, user: str) -> list[str]:
        """The Contact addresses registered for `user`, from the location table
        (`kamcmd ul.lookup` on the ctl socket): what the registrar knows."""
        assert self.run_dir is not None
        done = subprocess.run(
            [KAMCMD, "-s", f"unix:{self.run_dir / 'kamailio_ctl'}"]
            + ["ul.lookup", "location", user],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if "AOR not found" in done.stdout:
            return []
        if done.returncode != 0 or done.stdout.startswith("error"):
            raise KamailioError(f"kamcmd ul.lookup: {done.stdout}{done.stderr}")
        return re.findall(r"Address:\s*(\S+)", done.stdout)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start on fresh DBs; the first start picks free ports, later ones reuse them."""
        if self.running:
            raise KamailioError(f"Kamailio is already running (PID {self.pid})")
        binary = self._require_binary()
        if self.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="kamailio-"))
        fixed_ports = self._ports is not None

        def launch() -> None:
            if not fixed_ports:
                self._ports = KamailioPorts(*ports.free_ports("udp+tcp", "tcp", "tcp", "tcp"))
            self._init_db()
            self._launch(binary)

        self._start_on_free_ports(launch, attempts=1 if fixed_ports else START_ATTEMPTS)

    def restart(self) -> None:
        """Stop and start again on the same ports, as a server restart looks to clients.

        Users, XCAP documents and published presence are kept; the dialogs of
        subscriptions (presence's active watchers, RLS's back-end and list
        dialogs, pua's) are lost, as they are when a real server restarts. Kept,
        they made the new process NOTIFY dialogs its RLS no longer knew.
        """
        self.stop()
        self.check_stopped()
        if self.run_dir is None:
            raise KamailioError("restart() before start()")
        for table in SUBSCRIPTION_TABLES:
            self._reset_dbtext_table(table)
        self._launch(self._require_binary())

    def _remove_files(self) -> None:
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    # -- internals ---------------------------------------------------------

    def _require_binary(self) -> str:
        binary = kamailio_binary()
        if binary is None:
            raise KamailioError(f"kamailio is not installed; install: {APT_LINE}")
        return binary

    @property
    def tls_port(self) -> int:
        if not self.tls:
            raise KamailioError("this Kamailio was started without tls=True")
        return self.ports.tls

    @property
    def tls_certificate(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "tls-cert.pem"

    def _make_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1 (subjectAltName IP), made once."""
        assert self.run_dir is not None
        if self.tls_certificate.exists():
            return
        self_signed_certificate(
            self.run_dir / "tls-key.pem", self.tls_certificate, "127.0.0.1", ip=LISTEN_IP
        )
        (self.run_dir / "tls.cfg").write_text(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
            "require_certificate = no\n"
            f"private_key = {self.run_dir / 'tls-key.pem'}\n"
            f"certificate = {self.tls_certificate}\n"
        )

    def _render_config(self) -> Path:
        assert self.run_dir is not None
        ports = self.ports
        text = CONFIG_TEMPLATE.read_text(encoding="utf-8")
        for placeholder, value in {
            "@LISTEN_IP@": self.listen_ip,
            "@RUN@": str(self.run_dir),
            "@MODULES@": str(_module_dir()),
            "@SIP_PORT@": str(ports.sip),
            "@XCAP_PORT@": str(ports.xcap),
            "@MSRP_PORT@": str(ports.msrp),
            "@TLS_PORT@": str(ports.tls),
            "@TCP_RD_BUF_SIZE@": str(self.tcp_read_buffer),
        }.items():
            text = text.replace(placeholder, value)
        config = self.run_dir / "kamailio.cfg"
        config.write_text(text, encoding="utf-8")
        return config

    def _init_db(self) -> None:
        """Fresh SQLite DB (schema from the Debian package, users) and db_text tables."""
        assert self.run_dir is not None
        database = self.run_dir / "kamailio.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        db = sqlite3.connect(database)
        with db:
            db.execute("PRAGMA journal_mode=WAL")
            for schema in SQLITE_SCHEMAS:
                db.executescript((SQLITE_SCHEMA_DIR / f"{schema}-create.sql").read_text())
            db.executemany(
                "INSERT INTO subscriber (username, domain, password, ha1, ha1b)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        user,
                        DOMAIN,
                        password,
                        hashlib.md5(f"{user}:{DOMAIN}:{password}".encode()).hexdigest(),
                        hashlib.md5(f"{user}@{DOMAIN}:{DOMAIN}:{password}".encode()).hexdigest(),
                    )
                    for user, password in self._users.items()
                ],
            )
        db.close()

        dbtext = self.run_dir / "dbtext"
        shutil.rmtree(dbtext, ignore_errors=True)
        dbtext.mkdir()
        versions = (DBTEXT_SCHEMA_DIR / "version").read_text().splitlines()
        kept = [versions[0]] + [
            line for line in versions[1:] if any(f":{t}:" in line for t in DBTEXT_TABLES)
        ]
        (dbtext / "version").write_text("\n".join(kept) + "\n")
        for table in DBTEXT_TABLES:
            self._reset_dbtext_table(table)

    def _reset_dbtext_table(self, table: str) -> None:
        """An empty db_text table, from the package's schema."""
        assert self.run_dir is not None
        header, _, rest = (DBTEXT_SCHEMA_DIR / table).read_text().partition("\n")
        column = DBTEXT_NULLABLE.get(table)
        if column is not None:
            header = header.replace(column, column[:-1] + ",null)", 1)
        (self.run_dir / "dbtext" / table).write_text(header + "\n" + rest)

    def _launch(self, binary: str) -> None:
        """Run kamailio in its own session and wait until SIP, XCAP and MSRP answer."""
        assert self.run_dir is not None
        config = self._render_config()
        (self.run_dir / "kamailio_ctl").unlink(missing_ok=True)
        args = [binary, "-DD", "-E", "-f", str(config), "-Y", str(self.run_dir)]
        args += ["-w", str(self.run_dir), "-m", "64", "-M", "8"]
        if not self.qop:
            args += ["-A", "NO_QOP"]
        if not self.authenticate_requests:
            args += ["-A", "NO_AUTH_REQUESTS"]
        if self.nat:
            args += ["-A", "WITH_NAT"]
        if self.tls:
            self._make_certificate()
            args += ["-A", "WITH_TLS"]
        self._spawn(args, self.log_path, cwd=self.run_dir)
        self.start_seconds = self._wait_ready(self._answers, self.start_timeout)
        log.info(
            "kamailio PID %d ready in %.0f ms: SIP %d, XCAP %d, MSRP %d, run dir %s",
            self.pid,
            self.start_seconds * 1000,
            self.sip_port,
            self.xcap_port,
            self.msrp_port,
            self.run_dir,
        )

    def _answers(self) -> bool:
        """SIP answers an OPTIONS, and XCAP and MSRP accept connections."""
        return (
            sip_options(self.sip_port, timeout=0.05, host=self.listen_ip) is not None
            and _tcp_listening(self.xcap_port, self.listen_ip)
            and _tcp_listening(self.msrp_port, self.listen_ip)
        )
