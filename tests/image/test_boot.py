"""The amd64 twin of the SD image boots under qemu (TCG) and its phone registers.

One boot serves the module, in order: the first boot applies the boot
partition's simplephone.toml and the service registers with the Kamailio on
the host; a bad config on the boot partition leaves the good one running, with
its error on the console; a killed phone is restarted; a stalled one (SIGSTOP)
is killed by the watchdog and restarted; a stop ends it with status 0.

Minutes, not seconds (the build, then a boot under TCG): `make image-test`.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator

import pytest

from tests.image.twin import (
    HOST_FROM_GUEST,
    PROMPT,
    Guest,
    booted_guest,
    qemu_missing,
    twin_image,
)
from tests.peers.kamailio import Kamailio

pytestmark = pytest.mark.timeout(1800)

REGISTERED = re.compile(r"registered as sip:alice@example\.test")
# systemd's line at READY=1, which the phone sends once its plugins are loaded:
# after the registration, since the REGISTER goes out first.
STARTED = re.compile(r"Started simplephone\.service")
BOOT_TIMEOUT = 600.0
# WatchdogSec=30s, then the restart, a new registration and READY (TCG is slow).
RECOVERY_TIMEOUT = 240.0


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _config(kamailio: Kamailio, uri: str = "sip:alice@example.test") -> str:
    return (
        "[account]\n"
        f'uri = "{uri}"\n'
        'password = "alicepw"\n'
        f'registrar = "sip:{HOST_FROM_GUEST}:{kamailio.sip_port}"\n'
        'transport = "udp"\n\n'
        '[[contacts]]\nname = "Bob"\nuri = "sip:bob@example.test"\n\n'
        '[board]\nkind = "virtual"\nbuttons = 4\n'
    )


@pytest.fixture(scope="module")
def kamailio_on_host() -> Iterator[Kamailio]:
    with Kamailio() as server:
        yield server


@pytest.fixture(scope="module")
def guest(kamailio_on_host: Kamailio) -> Iterator[Guest]:
    missing = qemu_missing()
    if missing:
        _skip_or_fail(missing)
    image, build_seconds = twin_image()
    if build_seconds is not None:
        print(f"\nimage-test: built the amd64 twin in {build_seconds:.0f} s")
    machine = booted_guest(Guest, image, "boot-test", _config(kamailio_on_host))
    try:
        yield machine
    finally:
        status = machine.close()
        assert status == 0, f"qemu exited {status}; console:\n{machine.tail()}"


def _main_pid(guest: Guest) -> int:
    return int(guest.check("systemctl show --property=MainPID --value simplephone.service"))


def test_first_boot_applies_the_config_and_the_phone_registers(guest: Guest) -> None:
    guest.wait_for(REGISTERED, BOOT_TIMEOUT)
    print(f"\nimage-test: registered {guest.elapsed():.0f} s after qemu started")
    guest.wait_for(STARTED, BOOT_TIMEOUT)
    print(f"image-test: ready (READY=1) {guest.elapsed():.0f} s after qemu started")
    guest.wait_for(PROMPT, BOOT_TIMEOUT)  # root on the serial console (test build only)
    # Kernel messages could land inside a command's output line; the journal's
    # lines, written whole, still come.
    guest.check("dmesg --console-level 1")
    assert guest.check("systemctl is-active simplephone.service").strip() == "active"
    assert guest.check("stat -c '%a %U' /etc/simplephone/phone.toml").split() == [
        "600",
        "simplephone",
    ]
    assert guest.run("ls /boot/firmware/simplephone.toml")[0] != 0  # moved off the card
    assert guest.check("systemctl --failed --plain --no-legend").strip() == ""
    assert guest.check("findmnt -no OPTIONS /").startswith("ro,")
    assert "commit=1" in guest.check("findmnt -no OPTIONS /var/lib/simplephone")
    assert guest.run("systemctl is-active ssh.service")[1].strip() == "inactive"  # no keys given
    assert guest.run("ls /var/lib/simplephone/phone.db")[0] == 0


def test_bad_config_keeps_the_last_good_one_running(
    guest: Guest, kamailio_on_host: Kamailio
) -> None:
    pid = _main_pid(guest)
    good = guest.check("sha256sum /etc/simplephone/phone.toml")
    bad = _config(kamailio_on_host, uri="bob@")
    since = guest.mark
    encoded = base64.b64encode(bad.encode()).decode()
    guest.check(f"echo {encoded} | base64 -d > /boot/firmware/simplephone.toml")
    assert guest.run("systemctl start simplephone-first-boot.service")[0] != 0
    guest.wait_for(r"account\.uri: .*bob@", 60, since)  # the key at fault, on the console
    assert guest.check("sha256sum /etc/simplephone/phone.toml") == good
    assert guest.run("ls /boot/firmware/simplephone.toml")[0] == 0  # left for the person to fix
    assert _main_pid(guest) == pid
    assert guest.check("systemctl is-active simplephone.service").strip() == "active"
    guest.check("rm /boot/firmware/simplephone.toml && systemctl reset-failed")


def test_a_killed_phone_is_restarted(guest: Guest) -> None:
    pid = _main_pid(guest)
    since = guest.mark
    guest.check(f"kill -KILL {pid}")
    guest.wait_for(
        r"simplephone\.service: Main process exited, code=killed, status=9/KILL", 60, since
    )
    _wait_restarted(guest, pid, since)


def test_a_stalled_loop_is_killed_by_the_watchdog(guest: Guest) -> None:
    pid = _main_pid(guest)
    since = guest.mark
    guest.check(f"kill -STOP {pid}")
    guest.wait_for(r"simplephone\.service: Watchdog timeout", RECOVERY_TIMEOUT, since)
    # The watchdog's SIGABRT (faulthandler prints the stacks, then the process dies of it).
    guest.wait_for(
        r"simplephone\.service: Main process exited, code=(dumped|killed), status=6/ABRT", 60, since
    )
    _wait_restarted(guest, pid, since)


def _wait_restarted(guest: Guest, pid: int, since: int) -> None:
    """systemd started a new phone process in place of `pid`: registered, then READY."""
    guest.wait_for(REGISTERED, RECOVERY_TIMEOUT, since)
    guest.wait_for(STARTED, RECOVERY_TIMEOUT, since)
    assert _main_pid(guest) not in (0, pid)


def test_the_phone_stops_cleanly(guest: Guest) -> None:
    guest.check("systemctl stop simplephone.service", timeout=90)
    assert (
        guest.check("systemctl show --property=ExecMainStatus --value simplephone.service").strip()
        == "0"
    )
