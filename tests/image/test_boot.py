"""The amd64 twin of the SD image boots under qemu (TCG) and its phone registers.

One boot serves the module, in order: the first boot applies the boot
partition's simplephone.toml, grows the data partition to the end of a card
bigger than the image, and the service registers with the Kamailio on the
host; the LED class's files, timer trigger's included, are the service
user's; behind QEMU's user-mode NAT, as behind a home router, a presence
NOTIFY and a call from a phone on the host reach the twin's phone; a bad
config on the boot partition leaves the good one running, with its error on
the console; a killed phone is restarted; a stalled one (SIGSTOP) is killed by
the watchdog and restarted; a stop ends it with status 0.

Minutes, not seconds (the build, then a boot under TCG): `make image-test`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from phone.remote import RemotePhone
from tests.image.twin import (
    HOST_FROM_GUEST,
    PROMPT,
    Guest,
    booted_guest,
    qemu_missing,
    twin_image,
)
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, account, has_call, no_calls

pytestmark = pytest.mark.timeout(1800)

REGISTERED = re.compile(r"registered as sip:alice@example\.test")
# systemd's line at READY=1, which the phone sends once its plugins are loaded:
# after the registration, since the REGISTER goes out first.
STARTED = re.compile(r"Started simplephone\.service")
BOOT_TIMEOUT = 600.0
# WatchdogSec=30s fires 30 s into a stall; from the kill or the watchdog's abort
# to the new process's registration and READY took 16-20 s under TCG on an idle
# host (console.log of a run): three times that, for a loaded one.
RECOVERY_TIMEOUT = 60.0
# The SD card is this much bigger than the image: the data partition grows into it.
CARD_EXTRA_BYTES = 1 << 30
DATA = "/var/lib/simplephone"
CONTROL = "unix:/run/simplephone/control.sock"
GREEN = {"color": "green", "pattern": "steady"}


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
    # The twin is behind QEMU's NAT: nathelper sends to where its requests come from.
    with Kamailio(nat=True) as server:
        server.allow_watchers("alice", "bob")
        yield server


@pytest.fixture(scope="module")
def guest(kamailio_on_host: Kamailio) -> Iterator[Guest]:
    missing = qemu_missing()
    if missing:
        _skip_or_fail(missing)
    image, build_seconds = twin_image()
    if build_seconds is not None:
        print(f"\nimage-test: built the amd64 twin in {build_seconds:.0f} s")
    card_bytes = image.stat().st_size + CARD_EXTRA_BYTES
    machine = booted_guest(Guest, image, "boot-test", _config(kamailio_on_host), card_bytes)
    try:
        yield machine
    finally:
        status = machine.close()
        assert status == 0, f"qemu exited {status}; console:\n{machine.tail()}"


@pytest.fixture(scope="module")
def bob_on_host(kamailio_on_host: Kamailio, guest: Guest) -> Iterator[RemotePhone]:
    """bob's phone on the host's loopback, registered with the same Kamailio."""
    workdir = guest.workdir / "host-phones"
    workdir.mkdir(exist_ok=True)
    phones = PhoneFactory(workdir)
    server = kamailio_on_host
    try:
        yield phones.start("bob", account(server, "bob"), [("Alice", server.uri("alice"))])
    finally:
        phones.stop_all()  # a bob that did not exit with status 0 fails here


def _python(guest: Guest, source: str, user: str | None = None) -> str:
    """Run `source` with the twin's venv, as root or as `user` (with its groups)."""
    encoded = base64.b64encode(source.encode()).decode()
    as_user = f"setpriv --reuid={user} --regid={user} --init-groups " if user else ""
    return guest.check(f"echo {encoded} | base64 -d | {as_user}/opt/simplephone/bin/python -")


def _control(guest: Guest, code: str) -> str:
    """Run `code` with `c`, a client of the twin's phone's control interface."""
    return _python(
        guest, f"from phone.control import ControlClient\nc = ControlClient('{CONTROL}')\n{code}"
    )


def _guest_state(guest: Guest) -> dict[str, Any]:
    """The LEDs and calls of the twin's phone."""
    out = _control(
        guest,
        "import json\ns = c.state()\n"
        "print(json.dumps({'leds': {b: v['led'] for b, v in s['buttons'].items()},"
        " 'calls': [call['state'] for call in s['calls']]}))",
    )
    return json.loads(out.splitlines()[-1])


def _guest_wait_for(
    guest: Guest, condition: Callable[[dict[str, Any]], bool], what: str, timeout: float = 90.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = _guest_state(guest)
        if condition(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the twin's phone: never {what}; last state {state}")
        time.sleep(1.0)


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
    # The [rpi] extra: GPIO lines (gpiod), SPI panels (spidev, lgpio),
    # imported as the service does (lgpio makes FIFOs in $LG_WD, else in the
    # working directory).
    environment = guest.check("systemctl show --property=Environment --value simplephone")
    lg_wd = re.search(r"\bLG_WD=(\S+)", environment)
    assert lg_wd is not None, environment
    imported = _python(
        guest,
        f"import os\nos.environ['LG_WD'] = '{lg_wd.group(1)}'\n"
        "import gpiod, lgpio, spidev\nprint('rpi extra', gpiod.__version__)",
        user="simplephone",
    )
    assert imported.startswith("rpi extra 2."), imported


def _data_bytes(guest: Guest) -> int:
    return int(guest.check(f"df -B1 --output=size {DATA}").split()[-1])


def test_the_data_partition_fills_the_card(guest: Guest) -> None:
    guest.wait_for(rf"simplephone-first-boot: {DATA}: partition 3 of /dev/vda grown", 1)
    disk = int(guest.check("blockdev --getsize64 /dev/vda"))
    end = guest.check("sfdisk --dump /dev/vda").splitlines()[-1]
    start, size = (int(x) for x in re.findall(r"(?:start|size)=\s*(\d+)", end))
    assert (start + size) * 512 > disk - (1 << 20)  # up to the card's last MiB
    partition = int(guest.check("blockdev --getsize64 /dev/vda3"))
    assert partition > CARD_EXTRA_BYTES  # 64 MiB in the image
    size_now = _data_bytes(guest)
    assert size_now > partition * 9 // 10  # the file system took it, but for ext4's tables
    # Every boot runs it; once grown, it changes nothing and says nothing.
    again = guest.check("/usr/local/sbin/simplephone-first-boot")
    assert "grown" not in again and "MiB" not in again, again
    assert _data_bytes(guest) == size_now


def test_the_led_files_are_the_service_users(guest: Guest) -> None:
    """The twin's LED class devices are its PS/2 keyboard's (input-leds); the
    phone's own code, as the service user, lights one and blinks it."""
    name = guest.check("ls /sys/class/leds | grep -m 1 capslock").strip()
    folder = f"/sys/class/leds/{name}"
    assert "timer" in guest.check(f"cat {folder}/trigger")  # modules-load.d
    blink = (
        "import asyncio, pathlib\n"
        "from board.rpi import SysfsLed\n"
        "async def main():\n"
        f"    led = SysfsLed(pathlib.Path('/sys/class/leds'), '{name}')\n"
        "    led.on(); led.off(); led.blink(125, 375)\n"
        "    print('first write', 'refused' if led._retry else 'taken')\n"
        f"    path = pathlib.Path('{folder}/delay_off')\n"
        "    for _ in range(100):\n"
        "        await asyncio.sleep(0.05)\n"
        "        if path.exists() and path.read_text().strip() == '375': break\n"
        "    print('delays', path.read_text().strip())\n"
        "    led.off()\n"
        "asyncio.run(main())\n"
    )
    try:
        # No timer yet: the blink makes its delay files, root's, for the change rule to give.
        assert "delay_on" not in guest.check(f"ls {folder}")
        out = _python(guest, blink, user="simplephone")
        assert out.strip().splitlines()[-1] == "delays 375", out
        assert "LED" not in out, out  # no write failed (SysfsLed.report_failure)
        # Refused when udev's change rule had not run yet (then written again), or taken.
        print(f"\nimage-test: the blink's {out.strip().splitlines()[-2]}")
    finally:
        guest.run(f"echo none > {folder}/trigger")
    modes = guest.check(f"stat -c '%n %G %A' {folder}/brightness {folder}/trigger")
    assert all(line.split()[1:] == ["gpio", "-rw-rw-r--"] for line in modes.splitlines())


def test_the_gpio_character_devices_are_the_service_users(guest: Guest) -> None:
    """The twin's kernel has no gpio-sim (CONFIG_GPIO_SIM is off in Debian's
    6.1 amd64 config) and no GPIO chip: the udev rule and the unit are checked
    as written, and the wired buttons run on SimulatedChip (below)."""
    rule = guest.check("cat /etc/udev/rules.d/60-simplephone.rules")
    assert 'SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' in rule
    unit = guest.check("systemctl show --property=DeviceAllow --value simplephone")
    assert "char-gpiochip rw" in unit, unit
    assert "gpio" in guest.check("id -Gn simplephone").split()
    # The OLED's /dev/i2c-N: i2c-dev is loaded at boot (modules-load.d), and its
    # nodes (the twin's SMBus adapter's, if qemu's machine has one) are group i2c.
    assert guest.run("test -d /sys/module/i2c_dev")[0] == 0
    nodes = guest.check("find /dev -maxdepth 1 -name 'i2c-*' -printf '%f %g\\n'")
    assert all(line.split()[1] == "i2c" for line in nodes.splitlines()), nodes


def test_a_wired_button_press_reaches_the_board_through_the_loop(guest: Guest) -> None:
    """RpiBoard on the image's Python and gpiod, as the service user: the
    default pin map's key lines requested in one request, a line pulled low
    and let go, the edges read from the request's fd by the loop; its LEDs lit."""
    press = (
        "import asyncio\n"
        "from luma.core.interface.serial import noop\n"
        "from board.gpio import SimulatedChip\n"
        "from board.pinmap import DEFAULT_WIRING\n"
        "from board.rpi import RpiBoard\n"
        "from phone.board import Led, LedColor, LedPattern\n"
        "async def main():\n"
        "    chip = SimulatedChip('pinctrl-bcm2835')\n"
        "    board = RpiBoard(4, {'wiring': DEFAULT_WIRING}, open_chip=lambda: chip,\n"
        "                     open_bus=lambda display: noop())\n"
        "    events = []\n"
        "    await board.start(events.append)\n"
        "    board.set_led('contact-1', Led(LedColor.GREEN, LedPattern.STEADY))\n"
        "    chip.pull(26, low=True)\n"
        "    chip.pull(26, low=False)\n"
        "    for _ in range(100):\n"
        "        if len(events) == 2: break\n"
        "        await asyncio.sleep(0.05)\n"
        "    print('keys', len([r for r in chip.requests if 26 in r.settings]))\n"
        "    print('green', chip.value(17), 'red', chip.value(27))\n"
        "    print('events', [(e.button, e.down) for e in events])\n"
        "    await board.close()\n"
        "asyncio.run(main())\n"
    )
    out = _python(guest, press, user="simplephone").strip().splitlines()
    assert out[-3:] == [
        "keys 1",
        "green True red False",
        "events [('end', True), ('end', False)]",
    ], out


def test_a_presence_notify_reaches_the_phone_behind_nat(
    guest: Guest, kamailio_on_host: Kamailio, bob_on_host: RemotePhone
) -> None:
    log = kamailio_on_host.log_path.read_text()
    # The REGISTER came through QEMU's NAT, with rport (RFC 3581) in its Via.
    nat = re.search(r"NAT: REGISTER sip:alice@example\.test from 127\.0\.0\.1:\d+.*", log)
    assert nat is not None and ";rport" in nat.group(0), nat
    _guest_wait_for(guest, lambda s: s["leds"]["contact-1"] == GREEN, "bob available (green)")


def test_a_call_from_the_host_rings_the_phone_behind_nat(
    guest: Guest, bob_on_host: RemotePhone
) -> None:
    bob = bob_on_host
    bob.press("contact-1")
    _guest_wait_for(guest, lambda s: s["calls"] == ["ringing"], "rings for bob")
    bob.wait_for(has_call("ringing"), what="alice's phone rings, says the 180")
    _control(guest, "c.press('end')")
    bob.wait_for(no_calls, what="alice refused the call")
    _guest_wait_for(guest, lambda s: not s["calls"], "the call is over")


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
