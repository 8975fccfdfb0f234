"""`phone first-boot`: take what a user put on the SD card's boot partition.

The boot partition is FAT, so anyone can write to it from a laptop. At every
boot, before the phone starts, these files are taken from it (each is
removed once taken; a refused one stays, for the user to fix):

- `simplephone.toml`: the phone's config. It is checked as `phone
  check-config` checks it; a good one becomes `<config-dir>/phone.toml`
  (0600, owned by the service user) and clears `<config-dir>/pending-error`.
  A bad one is left where it is, and its error (naming the key) is printed
  and written to `<config-dir>/pending-error`, which `phone run` shows on
  the screen while it runs the last good config.
- `wifi.toml`: `ssid`, `psk` (the passphrase, 8 to 63 characters),
  `country` (ISO 3166 code, for the radio's regulatory domain) and an
  optional `hostname`. It becomes
  `<root>/etc/wpa_supplicant/wpa_supplicant-wlan0.conf` for systemd's
  `wpa_supplicant@wlan0` (with the PSK derived, so the passphrase is not
  stored), and the hostname `<root>/etc/hostname` and `/etc/hosts`.
  Without a wifi.toml, a `wpa_supplicant.conf` is copied there as it is.
- `ssh_authorized_keys`: installed as the admin user's
  `~/.ssh/authorized_keys`, with an sshd drop-in that allows keys only.

What the caller (the image's first-boot unit) must do after is said with
flag files in `<flag-dir>`: `enable-ssh`, `enable-wifi`, `set-hostname`.
The exit status is 1 when a file was refused, else 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from phone.settings import ConfigError, Table

CONFIG_ON_BOOT = "simplephone.toml"
WIFI_ON_BOOT = "wifi.toml"
WPA_CONF_ON_BOOT = "wpa_supplicant.conf"
KEYS_ON_BOOT = "ssh_authorized_keys"
CONFIG_NAME = "phone.toml"
PENDING_ERROR = "pending-error"  # next to the config the phone runs
WPA_CONF = "etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
SSHD_DROP_IN = "etc/ssh/sshd_config.d/simplephone.conf"
SSHD_KEYS_ONLY = """\
# Written by `phone first-boot`: keys only (from the boot partition's ssh_authorized_keys).
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
"""
_HOSTNAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")  # RFC 1123 label, lower case
_COUNTRY = re.compile(r"[A-Z]{2}")
_KEY_LINE = re.compile(
    r"(?:^|\s)(ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-\S+)\s+[A-Za-z0-9+/=]+"
)


def pending_error_path(config_file: Path) -> Path:
    """Where a refused config's error is kept for the phone running `config_file`."""
    return config_file.parent / PENDING_ERROR


def read_pending_error(config_file: Path) -> str | None:
    try:
        return pending_error_path(config_file).read_text().strip() or None
    except FileNotFoundError:
        return None


@dataclass
class FirstBoot:
    """Where everything goes; every path is a parameter so tests run in tmp dirs."""

    boot_dir: Path
    config_dir: Path
    check_config: Callable[[str], object]  # raises ConfigError (phone.cli.check_config)
    root: Path = Path("/")
    flag_dir: Path = Path("/run/simplephone-first-boot")
    user: str = "simplephone"  # the service user, owner of the config
    admin_user: str = "admin"  # who gets the SSH keys
    errors: list[str] = field(default_factory=list)

    def run(self) -> int:
        for step in (self._config, self._wifi, self._ssh_keys):
            step()
        return 1 if self.errors else 0

    def _refuse(self, name: str, error: str) -> None:
        line = f"{name}: {error} (left on the boot partition)"
        print(f"first boot: {line}", file=sys.stderr)
        self.errors.append(line)

    def _flag(self, name: str) -> None:
        self.flag_dir.mkdir(parents=True, exist_ok=True)
        (self.flag_dir / name).touch()

    # -- the phone's config ---------------------------------------------
    def _config(self) -> None:
        source = self.boot_dir / CONFIG_ON_BOOT
        pending = pending_error_path(self.config_dir / CONFIG_NAME)
        if not source.exists():
            return
        try:
            self.check_config(str(source))
        except (ConfigError, OSError) as exc:
            self._refuse(CONFIG_ON_BOOT, str(exc))
            self.config_dir.mkdir(parents=True, exist_ok=True)
            _write_private(pending, f"{CONFIG_ON_BOOT}: {exc}\n", self._owner(self.user))
            return
        self.config_dir.mkdir(parents=True, exist_ok=True)
        _write_private(self.config_dir / CONFIG_NAME, source.read_text(), self._owner(self.user))
        pending.unlink(missing_ok=True)
        source.unlink()
        print(f"first boot: {CONFIG_ON_BOOT} installed as {self.config_dir / CONFIG_NAME}")

    # -- Wi-Fi and the hostname -----------------------------------------
    def _wifi(self) -> None:
        source = self.boot_dir / WIFI_ON_BOOT
        target = self.root / WPA_CONF
        if not source.exists():
            copied = self.boot_dir / WPA_CONF_ON_BOOT
            if copied.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                _write_private(target, copied.read_bytes(), None)
                copied.unlink()
                self._flag("enable-wifi")
                print(f"first boot: {WPA_CONF_ON_BOOT} copied to {target}")
            return
        try:
            with open(source, "rb") as f:
                table = Table("", tomllib.load(f), ("ssid", "psk", "country", "hostname"))
            ssid = table.text("ssid", required=True)
            psk = table.text("psk", required=True)
            if not 8 <= len(psk) <= 63 or not psk.isascii():
                raise ConfigError("psk", "must be a passphrase of 8 to 63 ASCII characters")
            country = table.text("country", required=True).upper()
            if not _COUNTRY.fullmatch(country):
                raise ConfigError("country", f"must be a two-letter country code, got {country!r}")
            hostname = table.text("hostname")
            if hostname is not None and not _HOSTNAME.fullmatch(hostname):
                raise ConfigError("hostname", "must be letters, digits and '-' (a-z, up to 63)")
        except (ConfigError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            self._refuse(WIFI_ON_BOOT, str(exc))
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_private(target, wpa_supplicant_conf(ssid, psk, country), None)
        self._flag("enable-wifi")
        if hostname is not None:
            self._hostname(hostname)
        source.unlink()
        print(f"first boot: Wi-Fi {ssid!r} written to {target}")

    def _hostname(self, hostname: str) -> None:
        etc = self.root / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hostname").write_text(hostname + "\n")
        hosts = etc / "hosts"
        lines = hosts.read_text().splitlines() if hosts.exists() else ["127.0.0.1\tlocalhost"]
        lines = [line for line in lines if not line.startswith("127.0.1.1")]
        hosts.write_text("\n".join([*lines, f"127.0.1.1\t{hostname}"]) + "\n")
        self._flag("set-hostname")

    # -- SSH --------------------------------------------------------------
    def _ssh_keys(self) -> None:
        source = self.boot_dir / KEYS_ON_BOOT
        if not source.exists():
            return
        lines = [line.strip() for line in source.read_text(errors="replace").splitlines()]
        keys = [line for line in lines if line and not line.startswith("#")]
        bad = [n for n, line in enumerate(lines, 1) if line in keys and not _KEY_LINE.search(line)]
        if not keys or bad:
            where = f"line {bad[0]} is not a public key" if bad else "holds no key"
            self._refuse(KEYS_ON_BOOT, where)
            return
        owner = self._owner(self.admin_user)
        home = self._home(self.admin_user)
        ssh = home / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(ssh / "authorized_keys", "\n".join(keys) + "\n", owner)
        if owner is not None:
            os.chown(ssh, *owner)
        drop_in = self.root / SSHD_DROP_IN
        drop_in.parent.mkdir(parents=True, exist_ok=True)
        drop_in.write_text(SSHD_KEYS_ONLY)
        self._flag("enable-ssh")
        source.unlink()
        print(f"first boot: {len(keys)} SSH key(s) installed for {self.admin_user}")

    # -- users --------------------------------------------------------------
    def _owner(self, user: str) -> tuple[int, int] | None:
        """(uid, gid) to chown to: only as root, on the real root, for a user that exists."""
        if os.geteuid() != 0 or self.root != Path("/"):
            return None
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid

    def _home(self, user: str) -> Path:
        with contextlib.suppress(KeyError):
            if self.root == Path("/"):
                return Path(pwd.getpwnam(user).pw_dir)
        return self.root / "home" / user


def wpa_supplicant_conf(ssid: str, passphrase: str, country: str) -> str:
    """A wpa_supplicant config for one WPA2-PSK network. The SSID is written in
    hex and the PSK derived (IEEE 802.11i: PBKDF2-SHA1, 4096 rounds, the SSID
    as salt), so no character of either needs escaping."""
    psk = hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32)
    return (
        "# Written by `phone first-boot` from the boot partition's wifi.toml.\n"
        "ctrl_interface=/run/wpa_supplicant\n"  # root only: no group to depend on
        "update_config=0\n"
        f"country={country}\n"
        "\n"
        "network={\n"
        f"\tssid={ssid.encode().hex()}\n"
        f"\tpsk={psk.hex()}\n"
        "\tkey_mgmt=WPA-PSK\n"
        "}\n"
    )


def _write_private(path: Path, text: str | bytes, owner: tuple[int, int] | None) -> None:
    """Write 0600 (chowned to `owner`) through a temporary file and a rename, so a
    power cut leaves the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.new")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
        f.flush()
        os.fsync(f.fileno())
    if owner is not None:
        os.chown(temporary, *owner)
    os.replace(temporary, path)
