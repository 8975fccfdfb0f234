"""`phone first-boot` and `phone wiring`'s refusals: what lands where, from a boot
partition and a root file system in tmp dirs, through the real command line."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from phone.first_boot import wpa_supplicant_conf
from phone.remote import RemotePhone
from tests.peers.ports import free_port
from tests.phones import render_config

GOOD = """[account]
uri = "sip:alice@127.0.0.1:5099"

[board]
kind = "virtual"
buttons = 2
"""
BAD = GOOD.replace("buttons = 2", "buttons = 2\nbuttns = 3")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq1cF6Ku1bxA0X8Q0b0Ubu3vB7UQy3n7uCQ2x7QWq8M me@laptop"
RPI = """[account]
uri = "sip:alice@127.0.0.1:5099"

[board]
kind = "rpi"
buttons = 2

[board.rpi.wiring]
sound = "usb"

[board.rpi.wiring.buttons]
contact-1 = {{ key = 4, green = 17, red = {red} }}
"""


def phone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phone", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    names = ("boot", "etc-simplephone", "root", "run")
    paths = {name: tmp_path / name for name in names}
    for path in paths.values():
        path.mkdir()
    return paths


def first_boot(dirs: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    return phone(
        "first-boot",
        "--boot-dir",
        str(dirs["boot"]),
        "--config-dir",
        str(dirs["etc-simplephone"]),
        "--root",
        str(dirs["root"]),
        "--flag-dir",
        str(dirs["run"]),
        "--admin-user",
        "maker",
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_good_config_is_installed_and_clears_the_pending_error(dirs: dict[str, Path]) -> None:
    (dirs["boot"] / "simplephone.toml").write_text(GOOD)
    pending = dirs["etc-simplephone"] / "pending-error"
    pending.write_text("simplephone.toml: board.buttns: unknown key\n")
    result = first_boot(dirs)
    assert result.returncode == 0, result.stderr
    installed = dirs["etc-simplephone"] / "phone.toml"
    assert installed.read_text() == GOOD
    assert mode(installed) == 0o600
    assert not (dirs["boot"] / "simplephone.toml").exists()
    assert not pending.exists()


def test_a_bad_config_stays_and_its_error_is_kept_for_the_screen(dirs: dict[str, Path]) -> None:
    (dirs["etc-simplephone"] / "phone.toml").write_text(GOOD)
    (dirs["boot"] / "simplephone.toml").write_text(BAD)
    result = first_boot(dirs)
    assert result.returncode == 1
    assert "simplephone.toml: board.buttns: unknown key" in result.stderr
    assert (dirs["boot"] / "simplephone.toml").read_text() == BAD
    assert (dirs["etc-simplephone"] / "phone.toml").read_text() == GOOD  # the last good one
    pending = dirs["etc-simplephone"] / "pending-error"
    assert "board.buttns: unknown key" in pending.read_text()
    assert mode(pending) == 0o600


def test_a_pin_map_error_on_the_sd_card_names_the_key_and_the_pin(dirs: dict[str, Path]) -> None:
    (dirs["boot"] / "simplephone.toml").write_text(RPI.format(red=3))
    result = first_boot(dirs)
    assert result.returncode == 1
    assert (
        "board.rpi.wiring.buttons.contact-1.red: GPIO3 is taken by I2C (the display)"
        in result.stderr
    )


def test_the_phone_shows_the_pending_error_while_it_runs_the_last_good_config(
    tmp_path: Path,
) -> None:
    config = render_config({"uri": f"sip:alice@127.0.0.1:{free_port()}"}, [], tmp_path, "alice")
    (tmp_path / "pending-error").write_text("simplephone.toml: board.buttns: unknown key\n")
    phone_process = RemotePhone("alice", config, tmp_path).start()
    try:
        screen = phone_process.state()["screen"]
    finally:
        assert phone_process.stop() == 0
    text = "\n".join(screen)
    assert "Config refused:" in text
    assert "buttns" in text
    assert "CFG!" in screen[-1]


def test_wifi_toml_becomes_a_wpa_supplicant_config_and_sets_the_hostname(
    dirs: dict[str, Path],
) -> None:
    (dirs["boot"] / "wifi.toml").write_text(
        'ssid = "IEEE"\npsk = "password"\ncountry = "de"\nhostname = "desk-phone"\n'
    )
    (dirs["root"] / "etc").mkdir()
    (dirs["root"] / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n")
    result = first_boot(dirs)
    assert result.returncode == 0, result.stderr
    conf = dirs["root"] / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
    text = conf.read_text()
    # IEEE 802.11i-2004, H.4.3: passphrase "password", SSID "IEEE".
    assert "\tpsk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e\n" in text
    assert "\tssid=49454545\n" in text
    assert "country=DE\n" in text
    assert "password" not in text
    assert mode(conf) == 0o600
    assert (dirs["root"] / "etc/hostname").read_text() == "desk-phone\n"
    assert (dirs["root"] / "etc/hosts").read_text() == (
        "127.0.0.1\tlocalhost\n127.0.1.1\tdesk-phone\n"
    )
    assert sorted(p.name for p in dirs["run"].iterdir()) == ["enable-wifi", "set-hostname"]
    assert not (dirs["boot"] / "wifi.toml").exists()


@pytest.mark.parametrize(
    ("wifi", "key"),
    [
        ('ssid = "x"\npsk = "short"\ncountry = "DE"\n', "psk"),
        ('ssid = "x"\npsk = "long enough"\n', "country"),
        ('ssid = "x"\npsk = "long enough"\ncountry = "DE"\nhostname = "a_b"\n', "hostname"),
        ('ssid = "x"\npsk = "long enough"\ncountry = "DE"\npassword = "y"\n', "password"),
    ],
)
def test_a_bad_wifi_toml_stays_and_names_its_key(
    dirs: dict[str, Path], wifi: str, key: str
) -> None:
    (dirs["boot"] / "wifi.toml").write_text(wifi)
    result = first_boot(dirs)
    assert result.returncode == 1
    assert f"wifi.toml: {key}:" in result.stderr
    assert (dirs["boot"] / "wifi.toml").exists()
    assert not (dirs["root"] / "etc/wpa_supplicant").exists()


def test_a_wpa_supplicant_conf_is_copied_as_it_is(dirs: dict[str, Path]) -> None:
    own = wpa_supplicant_conf("Home", "a passphrase", "FR") + "# mine\n"
    (dirs["boot"] / "wpa_supplicant.conf").write_text(own)
    assert first_boot(dirs).returncode == 0
    assert (dirs["root"] / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf").read_text() == own
    assert (dirs["run"] / "enable-wifi").exists()


def test_ssh_keys_are_installed_key_only_and_ssh_is_flagged(dirs: dict[str, Path]) -> None:
    (dirs["boot"] / "ssh_authorized_keys").write_text(f"# my laptop\n{KEY}\n")
    result = first_boot(dirs)
    assert result.returncode == 0, result.stderr
    keys = dirs["root"] / "home/maker/.ssh/authorized_keys"
    assert keys.read_text() == KEY + "\n"
    assert (mode(keys), mode(keys.parent)) == (0o600, 0o700)
    drop_in = (dirs["root"] / "etc/ssh/sshd_config.d/simplephone.conf").read_text()
    assert "PasswordAuthentication no" in drop_in
    assert (dirs["run"] / "enable-ssh").exists()


def test_a_file_that_is_no_key_stays(dirs: dict[str, Path]) -> None:
    (dirs["boot"] / "ssh_authorized_keys").write_text(f"{KEY}\nhunter2\n")
    result = first_boot(dirs)
    assert result.returncode == 1
    assert "ssh_authorized_keys: line 2 is not a public key" in result.stderr
    assert not (dirs["run"] / "enable-ssh").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (RPI.format(red=4), "board.rpi.wiring.buttons.contact-1.red: GPIO4 is already"),
        (GOOD, "board.kind: the pin map is for kind = 'rpi'"),
        (RPI.split("[board.rpi.wiring]")[0], "board.rpi.wiring: missing"),
        (
            RPI.format(red=27).replace('"usb"', '"hifiberry-dac"'),
            "board.rpi.wiring.sound: 'hifiberry-dac': an I2S sound card needs a device-tree overlay",
        ),
    ],
)
def test_wiring_refuses_a_config_without_a_good_pin_map(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "phone.toml"
    path.write_text(text)
    result = phone("wiring", "--config", str(path), "--out", str(tmp_path / "wiring.png"))
    assert result.returncode == 1
    assert message in result.stderr
    assert not (tmp_path / "wiring.png").exists()
