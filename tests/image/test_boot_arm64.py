"""The Pi's image (arm64) boots under qemu-system-aarch64 and its phone registers.

Opt-in, never in CI (a boot under TCG emulating another architecture takes
many minutes): `make image-test-arm64` (IMAGE_TEST=arm64). It boots the image
`make image` makes (built now when none matches the recipe, kept in
IMAGE_BUILD_DIR), or the one IMAGE_ARM64_IMG names, on QEMU's `virt` board
with Cortex-A53 cores (the Pi 3B+'s and Zero 2 W's).

What this proves is the card without the Pi's own firmware: Debian's arm64
kernel and initramfs as raspi-firmware put them on the boot partition (qemu's
direct kernel boot stands in for the firmware's), the root found by its label,
the cross-built pjsua2 in the venv, the units, and the first boot taking the
boot partition's config. The config's board is `virtual`: the virt board has
no Pi GPIO chip (`pinctrl-bcm2835`) for the `rpi` board's lines.

The image has no login on its console (that is the amd64 test twin's), so the
command line qemu gives the kernel (cmdline.txt, as the firmware would) gets
the virt board's PL011 as console and journald's forward-to-console; the
registration is also read from Kamailio's location table. A power-off through
QEMU's monitor must stop the phone with status 0 and end qemu with 0.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.test_boot import REGISTERED, STARTED, _config, _skip_or_fail
from tests.image.twin import Guest, booted_guest, mcopy_out, qemu_missing, twin_image
from tests.peers.kamailio import Kamailio

pytestmark = pytest.mark.timeout(3600)

BOOT_TIMEOUT = 1500.0
INSTALLED = re.compile(r"simplephone\.toml installed as /etc/simplephone/phone\.toml")
FIRST_BOOT_ENDED = re.compile(
    r"simplephone-first-boot\.service: (Deactivated successfully|Failed with result '[^']*')"
)
PACKAGES = "qemu-system-arm mmdebstrap mtools dosfstools fdisk crossbuild-essential-arm64 swig"


class PiGuest(Guest):
    """One boot of a copy of the Pi's image on QEMU's arm64 `virt` board."""

    def copy_boot_files(self) -> None:
        """The kernel and initramfs that config.txt names (raspi-firmware writes
        their versioned names there, for the Pi's firmware), and cmdline.txt."""
        mcopy_out(self.disk, "config.txt", self.workdir / "config.txt")
        config = (self.workdir / "config.txt").read_text()
        kernel = re.search(r"^kernel=(\S+)$", config, re.M)
        initramfs = re.search(r"^initramfs (\S+)", config, re.M)
        assert kernel and initramfs, f"config.txt names no kernel or initramfs:\n{config}"
        mcopy_out(self.disk, kernel.group(1), self.workdir / "vmlinuz")
        mcopy_out(self.disk, initramfs.group(1), self.workdir / "initrd.img")
        mcopy_out(self.disk, "cmdline.txt", self.workdir / "cmdline.txt")

    def qemu_argv(self, cmdline: str) -> list[str]:
        # The Pi's consoles (its UARTs) are not on the virt board: the PL011 is.
        kept = [arg for arg in cmdline.split() if not arg.startswith("console=")]
        append = [*kept, "console=ttyAMA0", "systemd.journald.forward_to_console=1"]
        # fmt: off
        return [
            "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-accel", "tcg",
            "-m", "1024", "-smp", "2", "-display", "none", "-serial", "stdio",
            "-monitor", f"unix:{self.monitor},server,nowait",
            "-kernel", str(self.workdir / "vmlinuz"),
            "-initrd", str(self.workdir / "initrd.img"),
            "-append", " ".join(append),
            "-drive", f"file={self.disk},format=raw,if=virtio",
            "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
        ]
        # fmt: on

    @property
    def monitor(self) -> Path:
        return self.workdir / "monitor.sock"

    def power_off(self) -> None:
        """The virt board's power button (QEMU's `system_powerdown`): systemd-logind
        shuts the guest down, as a Pi's button or `poweroff` would."""
        with socket.socket(socket.AF_UNIX) as monitor:
            monitor.connect(str(self.monitor))
            monitor.sendall(b"system_powerdown\n")
            monitor.settimeout(10)
            reply = b""
            while b"system_powerdown" not in reply:
                chunk = monitor.recv(4096)
                if not chunk:
                    break
                reply += chunk


@pytest.fixture(scope="module")
def kamailio_on_host() -> Iterator[Kamailio]:
    with Kamailio() as server:
        yield server


@pytest.fixture(scope="module")
def guest(kamailio_on_host: Kamailio) -> Iterator[PiGuest]:
    given = os.environ.get("IMAGE_ARM64_IMG")
    if given:
        image = Path(given)
    else:
        missing = qemu_missing("qemu-system-aarch64", PACKAGES)
        if missing:
            _skip_or_fail(missing)
        image, build_seconds = twin_image("arm64", test_console=False)
        if build_seconds is not None:
            print(f"\nimage-test-arm64: built the arm64 image in {build_seconds:.0f} s")
    if shutil.which("qemu-system-aarch64") is None:
        _skip_or_fail(f"qemu-system-aarch64 is not installed; as root: apt-get install {PACKAGES}")
    machine = booted_guest(PiGuest, image, "boot-test-arm64", _config(kamailio_on_host))
    try:
        yield machine
    finally:
        machine.close()


def test_the_first_boot_takes_the_config(guest: PiGuest) -> None:
    guest.wait_for(INSTALLED, BOOT_TIMEOUT)
    print(f"\nimage-test-arm64: config taken {guest.elapsed():.0f} s after qemu started")
    # The config's board is `virtual`, with no pin map: the unit must still
    # end well (an image with the old overlay writer once failed it here).
    ended = guest.wait_for(FIRST_BOOT_ENDED, BOOT_TIMEOUT)
    assert ended.group(1) == "Deactivated successfully", f"the first boot failed:\n{guest.tail()}"


def test_the_phone_registers(guest: PiGuest, kamailio_on_host: Kamailio) -> None:
    guest.wait_for(REGISTERED, BOOT_TIMEOUT)
    print(f"\nimage-test-arm64: registered {guest.elapsed():.0f} s after qemu started")
    guest.wait_for(STARTED, BOOT_TIMEOUT)
    print(f"image-test-arm64: ready (READY=1) {guest.elapsed():.0f} s after qemu started")
    deadline = time.monotonic() + 30
    while not kamailio_on_host.bindings("alice"):
        assert time.monotonic() < deadline, "Kamailio has no binding for alice"
        time.sleep(1)


def test_a_power_off_stops_the_phone_cleanly(guest: PiGuest) -> None:
    since = guest.mark
    assert guest.close(timeout=600) == 0, f"qemu did not power off; console:\n{guest.tail()}"
    # systemd says so only when the phone exited with status 0 on SIGTERM.
    guest.wait_for(r"simplephone\.service: Deactivated successfully", 0, since)
