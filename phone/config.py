"""The phone's configuration: one TOML file, checked completely before anything starts.

Layout (every section but `[account]` and `[board]` is optional)::

    log_level = "info"

    [account]                 # AccountConfig
    uri = "sip:alice@example.com"
    password = "..."
    registrar = "sip:example.com"

    [[contacts]]              # ContactConfig, one per button, in button order
    name = "Bob"
    uri = "sip:bob@example.com"
    blf = true                # also its dialog state (BLF)
    conference = false        # true: a conference room (the conference plugin)

    [board]                   # BoardConfig
    kind = "rpi"
    buttons = 8
    [board.rpi]               # the board's own settings, checked by the board class

    [calls]                   # CallsConfig
    [storage]                 # StorageConfig
    [control]                 # ControlSettings: token, group, screenshot_dir
    [audio]                   # AudioSettings: backend, echo canceller, tones
    [plugins.call_log]        # PluginConfig: `enabled` plus the plugin's own settings
    max_entries = 200

Every table is read with `phone.settings.Table`, so every error is a
ConfigError naming the key path, as in
`contacts[2].uri: not a SIP URI: 'bob@' (...)`. Array indexes are 0-based, as
in Python and in TOML tools: `contacts[0]` is the first `[[contacts]]` table.
A bad file never yields a partly built Config.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, overload

from phone.board_kinds import BUILTIN_BOARDS, board_kinds
from phone.settings import ConfigError, Table, describe_value
from phone.uri import SipUri

MAX_BUTTONS = 64
LOG_LEVELS = ("debug", "info", "warning", "error")
REJECT_CODES = (486, 603)
FRAME_MS = (10, 20)
# phone.audio's choices, spelled here so the config stays importable without ALSA.
ECHO_ALGORITHMS = ("webrtc", "webrtc-aec3", "speex", "none")
AGGRESSIVENESS = ("conservative", "moderate", "aggressive")
TONE_PLANS = ("europe", "north-america")
DEFAULT_CODECS = ("G722/16000", "PCMU/8000", "PCMA/8000")
# Settings whose values never reach a log line.
SECRET_WORDS = ("password", "secret", "token")
REDACTED = "<redacted>"
MIN_TOKEN_LENGTH = 16

_CODEC = re.compile(r"[A-Za-z0-9.+_-]+/\d+(/\d+)?")


class Transport(StrEnum):
    """The SIP transport of the account (RFC 3261 §18)."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class SecondCall(StrEnum):
    """What happens to an incoming call while another call is up."""

    BUSY = "busy"  # answer it with 486 Busy Here
    RING = "ring"  # let it ring as a waiting call


@dataclass(frozen=True)
class AccountConfig:
    """The SIP account. `registrar` None is no-registrar mode: the phone is
    reached directly at `uri` (then `sip:user@IP:PORT`). Ports 0 mean "pick a
    free one at start"."""

    uri: str
    username: str
    password: str = field(repr=False)
    registrar: str | None
    outbound_proxy: str | None
    transport: Transport
    port: int
    rtp_port: int
    reg_expires: int
    display_name: str | None
    tls_verify: bool = True  # check the server's certificate (transport tls only)
    tls_ca_file: str | None = None  # CA bundle for that check; None: the system's


@dataclass(frozen=True)
class ContactConfig:
    """One `[[contacts]]` entry: a button that calls `uri` and shows its presence."""

    name: str
    uri: str
    blf: bool = False
    conference: bool = False  # a conference room's URI (plugins/conference)


@dataclass(frozen=True)
class BoardConfig:
    """Which board drives the phone; `settings` is the `[board.<kind>]` table,
    left for the board class's `validate_settings` to check."""

    kind: str
    buttons: int
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallsConfig:
    """`[calls]`: how calls are refused, answered and placed."""

    reject_code: int = 486
    second_call: SecondCall = SecondCall.BUSY
    codecs: tuple[str, ...] = DEFAULT_CODECS
    long_press_ms: int = 800
    no_answer_timeout_s: int = 60
    # With a registrar: INVITE, MESSAGE, SUBSCRIBE, NOTIFY and REFER only from
    # it and the outbound proxy, 403 for anyone else (phone.sip.proxy_only).
    # Without a registrar (direct mode) every source is accepted whatever this says.
    accept_only_from_proxy: bool = True


class AudioBackend(StrEnum):
    """Who runs the sound card (see phone.audio)."""

    BRIDGE = "bridge"  # our ALSA thread and pjmedia's echo canceller (works everywhere)
    PJSUA = "pjsua"  # pjsua's own sound port (needs pjproject built with ALSA: the Pi image)


@dataclass(frozen=True)
class AudioSettings:
    """`[audio]`: how sound is handled where the board has ALSA devices."""

    backend: AudioBackend = AudioBackend.BRIDGE
    echo: str = "webrtc"  # webrtc | webrtc-aec3 | speex | none
    aggressiveness: str = "conservative"  # conservative | moderate | aggressive
    noise_suppressor: bool = False
    delay_ms: int = 0  # WebRTC delay hint: the acoustic delay left after our alignment
    tail_ms: int = 200  # Speex filter length
    frame_ms: int = 20
    volume_step: int = 10
    tones: str = "europe"  # europe | north-america


@dataclass(frozen=True)
class ControlSettings:
    """`[control]`: who may use the control interface and where it may write
    (phone.control). A TCP address other than loopback needs `token`."""

    token: str | None = field(default=None, repr=False)  # every request carries it, if set
    group: str | None = None  # a Unix socket is 0660 with this group, else 0600
    screenshot_dir: str | None = None  # `screenshot` with a path writes only under it


@dataclass(frozen=True)
class StorageConfig:
    """`[storage]`: the SQLite file of contacts, history and plugin tables."""

    path: str


@dataclass(frozen=True, repr=False)
class PluginConfig:
    """One `[plugins.<name>]` table: `enabled` and the plugin's own settings,
    which the plugin itself validates (see phone.hookspecs)."""

    enabled: bool = True
    settings: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Plugin settings may hold passwords (an XCAP server's, say).
        return f"PluginConfig(enabled={self.enabled!r}, settings={_redact(self.settings)!r})"


@dataclass(frozen=True)
class Config:
    """A whole config file, checked (`load_config`)."""

    account: AccountConfig
    contacts: tuple[ContactConfig, ...]
    board: BoardConfig
    calls: CallsConfig
    storage: StorageConfig
    plugins: dict[str, PluginConfig]
    log_level: str  # a logging level name: DEBUG, INFO, WARNING or ERROR
    audio: AudioSettings = field(default_factory=AudioSettings)
    control: ControlSettings = field(default_factory=ControlSettings)

    def as_dict(self) -> dict[str, Any]:
        """The config as TOML-shaped data; `parse_config(c.as_dict()) == c`."""
        account = self.account
        account_data: dict[str, Any] = {
            "uri": account.uri,
            "username": account.username,
            "transport": account.transport.value,
            "port": account.port,
            "rtp_port": account.rtp_port,
            "reg_expires": account.reg_expires,
        }
        if account.password:
            account_data["password"] = account.password
        if account.transport is Transport.TLS:
            account_data["tls_verify"] = account.tls_verify
        for name in ("registrar", "outbound_proxy", "display_name", "tls_ca_file"):
            if getattr(account, name) is not None:
                account_data[name] = getattr(account, name)
        board: dict[str, Any] = {"kind": self.board.kind, "buttons": self.board.buttons}
        if self.board.settings:
            board[self.board.kind] = dict(self.board.settings)
        return {
            "log_level": self.log_level.lower(),
            "account": account_data,
            "contacts": [
                {"name": c.name, "uri": c.uri, "blf": c.blf, "conference": c.conference}
                for c in self.contacts
            ],
            "board": board,
            "calls": {
                "reject_code": self.calls.reject_code,
                "second_call": self.calls.second_call.value,
                "codecs": list(self.calls.codecs),
                "long_press_ms": self.calls.long_press_ms,
                "no_answer_timeout_s": self.calls.no_answer_timeout_s,
                "accept_only_from_proxy": self.calls.accept_only_from_proxy,
            },
            "storage": {"path": self.storage.path},
            "audio": {
                f.name: (v.value if isinstance(v, StrEnum) else v)
                for f in fields(AudioSettings)
                for v in [getattr(self.audio, f.name)]
            },
            "control": {
                f.name: getattr(self.control, f.name)
                for f in fields(ControlSettings)
                if getattr(self.control, f.name) is not None
            },
            "plugins": {
                name: {"enabled": plugin.enabled, **plugin.settings}
                for name, plugin in self.plugins.items()
            },
        }

    def redacted(self) -> dict[str, Any]:
        """`as_dict()` with passwords and other secrets replaced, for logs and `check-config`."""
        return _redact(self.as_dict())


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a TOML config file; relative paths in it are relative to the file."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(str(path), f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), f"not UTF-8 text: {e.reason} at byte {e.start}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # The message ends with "(at line N, column M)".
        raise ConfigError(str(path), f"invalid TOML: {e}") from None
    return parse_config(data, base_dir=path.parent)


def parse_config(data: dict[str, Any], base_dir: str | os.PathLike[str] | None = None) -> Config:
    """Check TOML data and build the Config; raises ConfigError at the first problem."""
    root = Table("", data, _keys(Config))
    account = _parse_account(root.table("account", _keys(AccountConfig), required=True), base_dir)
    contacts = _parse_contacts(root.take("contacts"))
    board = _parse_board(root)
    calls = _parse_calls(root.table("calls", _keys(CallsConfig)))
    storage = _parse_storage(root.table("storage", _keys(StorageConfig)), base_dir)
    plugins = _parse_plugins(root.table("plugins"))
    audio = _parse_audio(root.table("audio", _keys(AudioSettings)))
    control = _parse_control(root.table("control", _keys(ControlSettings)), base_dir)
    level = root.choice("log_level", LOG_LEVELS, "info")
    return Config(account, contacts, board, calls, storage, plugins, level.upper(), audio, control)


def default_storage_path() -> str:
    """`$XDG_STATE_HOME/simplephone/phone.db`, or under `~/.local/state` when the
    variable is unset or not absolute (XDG Base Directory spec)."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return str(base / "simplephone" / "phone.db")


# -- sections --------------------------------------------------------------


def _parse_account(table: Table, base_dir: str | os.PathLike[str] | None) -> AccountConfig:
    uri = table.uri("uri", required=True)
    if uri.user is None:
        raise ConfigError(table.key("uri"), f"needs a user part, as in sip:alice@{uri.host}")
    registrar = table.uri("registrar")
    if registrar is not None and registrar.user is not None:
        raise ConfigError(
            table.key("registrar"),
            f"must not have a user part (RFC 3261 §10.2), got {describe_value(str(registrar))}",
        )
    outbound_proxy = table.uri("outbound_proxy")
    transport = _account_transport(table, uri)
    # Registered: any free port (the registrar learns it). Direct: the standard port.
    default_port = 0 if registrar is not None else 5061 if transport is Transport.TLS else 5060
    port = table.integer("port", 0, 65535)
    if registrar is None and uri.port is not None:
        if port is not None and port != uri.port:
            raise ConfigError(
                table.key("port"),
                f"must match the port of account.uri ({uri.port}) when there is no registrar, "
                f"got {port}",
            )
        default_port = uri.port
    rtp_port = table.integer("rtp_port", 0, 65534)
    if rtp_port is not None and rtp_port != 0 and (rtp_port < 1024 or rtp_port % 2):
        raise ConfigError(
            table.key("rtp_port"),
            f"must be 0 (any free port) or an even number from 1024 to 65534, got {rtp_port}",
        )
    needs_password = registrar is not None or outbound_proxy is not None
    password = table.text("password", required=needs_password) or ""
    account = AccountConfig(
        uri=str(uri),
        username=table.text("username") or uri.user,
        password=password,
        registrar=None if registrar is None else str(registrar),
        outbound_proxy=None if outbound_proxy is None else str(outbound_proxy),
        transport=transport,
        port=default_port if port is None else port,
        rtp_port=rtp_port or 0,
        reg_expires=table.integer("reg_expires", 10, 86400, 300),
        display_name=table.text("display_name"),
        tls_verify=table.boolean("tls_verify", True),
        tls_ca_file=_resolve(table.text("tls_ca_file"), base_dir),
    )
    for name in ("tls_verify", "tls_ca_file"):
        if name in table and transport is not Transport.TLS:
            raise ConfigError(table.key(name), f"applies to transport tls only, not {transport}")
    if account.tls_ca_file is not None and not os.path.isfile(account.tls_ca_file):
        raise ConfigError(
            table.key("tls_ca_file"), f"no such file: {describe_value(account.tls_ca_file)}"
        )
    return account


def _account_transport(table: Table, uri: SipUri) -> Transport:
    """The transport named in the config must agree with the URI's own
    `;transport=` and with a sips: scheme (TLS on every hop, RFC 3261 §26.2.2)."""
    name = table.choice("transport", Transport)
    from_uri = uri.params.get("transport")
    if from_uri is not None:
        from_uri = from_uri.lower()
        if from_uri not in tuple(Transport):
            raise ConfigError(table.key("uri"), f"unsupported ;transport={from_uri}")
        if name is not None and name != from_uri:
            raise ConfigError(
                table.key("transport"),
                f"{describe_value(name.value)} contradicts ;transport={from_uri} in account.uri",
            )
        name = Transport(from_uri)
    if uri.scheme == "sips":
        if name is not None and name is not Transport.TLS:
            raise ConfigError(
                table.key("transport"), f"a sips: URI needs tls, got {describe_value(name.value)}"
            )
        name = Transport.TLS
    return name or Transport.UDP


def _parse_contacts(value: Any) -> tuple[ContactConfig, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(
            "contacts", f"must be an array of tables ([[contacts]]), got {describe_value(value)}"
        )
    contacts: list[ContactConfig] = []
    seen: list[tuple[SipUri, str]] = []
    for index, item in enumerate(value):
        table = Table(f"contacts[{index}]", item, _keys(ContactConfig))
        name = table.text("name", required=True)
        uri = table.uri("uri", required=True)
        for other, other_key in seen:
            if uri.same_address(other):
                raise ConfigError(table.key("uri"), f"same address as {other_key} ({uri.aor})")
        seen.append((uri, table.key("uri")))
        contacts.append(
            ContactConfig(
                name, str(uri), table.boolean("blf", False), table.boolean("conference", False)
            )
        )
    return tuple(contacts)


def _parse_board(root: Table) -> BoardConfig:
    """`[board]`: its kind is one of the installed boards (phone.board_kinds.board_kinds).
    A built-in kind with only built-in kinds' sections needs no look at the
    installed packages' metadata (phone.board_kinds.BUILTIN_BOARDS)."""
    raw = root.take("board", required=True)
    kinds = tuple(sorted(BUILTIN_BOARDS))
    if (
        not isinstance(raw, dict)
        or raw.get("kind") not in BUILTIN_BOARDS
        or not raw.keys() <= {"kind", "buttons", *kinds}
    ):
        kinds = board_kinds()
    table = root.table("board", ("kind", "buttons", *kinds), required=True)
    kind = table.choice("kind", kinds, required=True)
    buttons = table.integer("buttons", 1, MAX_BUTTONS, required=True)
    # Sections for the other kinds may stay in the file, so switching boards is
    # a one-line change; only the chosen kind's settings are carried.
    settings: dict[str, Any] = {}
    for other in kinds:
        section = table.table(other)
        if other == kind:
            settings = dict(section.data)
    return BoardConfig(kind, buttons, settings)


def _parse_calls(table: Table) -> CallsConfig:
    default = CallsConfig()
    return CallsConfig(
        reject_code=table.choice("reject_code", REJECT_CODES, default.reject_code),
        second_call=table.choice("second_call", SecondCall, default.second_call),
        codecs=_parse_codecs(table),
        long_press_ms=table.integer("long_press_ms", 100, 5000, default.long_press_ms),
        no_answer_timeout_s=table.integer(
            "no_answer_timeout_s", 1, 3600, default.no_answer_timeout_s
        ),
        accept_only_from_proxy=table.boolean(
            "accept_only_from_proxy", default.accept_only_from_proxy
        ),
    )


def _parse_audio(table: Table) -> AudioSettings:
    default = AudioSettings()
    return AudioSettings(
        backend=table.choice("backend", AudioBackend, default.backend),
        echo=table.choice("echo", ECHO_ALGORITHMS, default.echo),
        aggressiveness=table.choice("aggressiveness", AGGRESSIVENESS, default.aggressiveness),
        noise_suppressor=table.boolean("noise_suppressor", default.noise_suppressor),
        delay_ms=table.integer("delay_ms", 0, 500, default.delay_ms),
        tail_ms=table.integer("tail_ms", 10, 1000, default.tail_ms),
        frame_ms=table.choice("frame_ms", FRAME_MS, default.frame_ms),
        volume_step=table.integer("volume_step", 1, 50, default.volume_step),
        tones=table.choice("tones", TONE_PLANS, default.tones),
    )


def _parse_codecs(table: Table) -> tuple[str, ...]:
    value = table.array("codecs")
    if value is None:
        return DEFAULT_CODECS
    if not value:
        raise ConfigError(table.key("codecs"), "must name at least one codec")
    codecs: list[str] = []
    for index, codec in enumerate(value):
        key = f"{table.key('codecs')}[{index}]"
        if not isinstance(codec, str) or not _CODEC.fullmatch(codec):
            raise ConfigError(
                key, f"must look like NAME/RATE, such as 'PCMU/8000', got {describe_value(codec)}"
            )
        if codec.lower() in (c.lower() for c in codecs):
            raise ConfigError(key, f"{describe_value(codec)} is listed twice")
        codecs.append(codec)
    return tuple(codecs)


def _parse_control(table: Table, base_dir: str | os.PathLike[str] | None) -> ControlSettings:
    token = table.text("token")
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            table.key("token"), f"must be at least {MIN_TOKEN_LENGTH} characters long"
        )
    return ControlSettings(
        token=token,
        group=table.text("group"),
        screenshot_dir=_resolve(table.text("screenshot_dir"), base_dir),
    )


def _parse_storage(table: Table, base_dir: str | os.PathLike[str] | None) -> StorageConfig:
    return StorageConfig(_resolve(table.text("path"), base_dir) or default_storage_path())


@overload
def _resolve(text: str, base_dir: str | os.PathLike[str] | None) -> str: ...
@overload
def _resolve(text: None, base_dir: str | os.PathLike[str] | None) -> None: ...
def _resolve(text: str | None, base_dir: str | os.PathLike[str] | None) -> str | None:
    """A path from the config: `~` expanded, relative to the config file's directory."""
    if text is None:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return str(path)


def _parse_plugins(table: Table) -> dict[str, PluginConfig]:
    """Each plugin's settings are left for the plugin to read (phone.plugins)."""
    plugins: dict[str, PluginConfig] = {}
    for name in table:
        section = table.table(name)
        enabled = section.boolean("enabled", True)
        settings = {key: value for key, value in section.data.items() if key != "enabled"}
        plugins[name] = PluginConfig(enabled, settings)
    return plugins


def _keys(cls: type) -> tuple[str, ...]:
    """The TOML keys of a section: the fields of its dataclass."""
    return tuple(f.name for f in fields(cls))


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if any(word in key.lower() for word in SECRET_WORDS) else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value
