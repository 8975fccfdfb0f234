"""The amd64 twin of the SD image, built by `image/build.sh` and booted under qemu.

The twin is built with `--test-console` (root logged in on the serial console,
the journal forwarded to it), which `make image` never uses. A built twin is
kept in the build folder and used again while the recipe's inputs (the trees
of `image/`, the phone's packages and `pyproject.toml` at HEAD) are unchanged,
since the recipe takes HEAD (git archive).

The guest is booted the way the Pi's firmware does it: the kernel, initramfs
and command line come from the image's FAT boot partition (qemu's direct
kernel boot). QEMU's user-mode network makes the host's 127.0.0.1 the guest's
10.0.2.2, so the guest reaches peers on the host's loopback and nothing leaves
the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "image" / "build.sh"
# What the image is made from (the git archive of HEAD holds the rest too, but
# only these reach the image).
RECIPE_INPUTS = ("image", "phone", "board", "plugins", "pyproject.toml")
# The boot partition's first sector (build.sh: FIRST_SECTOR).
BOOT_OFFSET = 8192 * 512
HOST_FROM_GUEST = "10.0.2.2"
QEMU_PACKAGES = "qemu-system-x86 mmdebstrap mtools dosfstools fdisk"
# Terminal control sequences (bash's bracketed paste, colours) in console text.
CONTROL_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
PROMPT = re.compile(r"root@[\w-]+:[^\n]*# ")


G = TypeVar("G", bound="Guest")


class GuestError(RuntimeError):
    """The guest did not show what was waited for; the message has the console's tail."""


def build_dir() -> Path:
    """Where twins are built and kept (IMAGE_BUILD_DIR, else build/image)."""
    return Path(os.environ.get("IMAGE_BUILD_DIR") or REPO / "build" / "image")


def recipe_key() -> str:
    """The git object ids of the recipe's inputs at HEAD."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", *(f"HEAD:{path}" for path in RECIPE_INPUTS)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return " ".join(out.split())


def twin_image(arch: str = "amd64", test_console: bool = True) -> tuple[Path, float | None]:
    """The built image (the amd64 twin by default), built now when none matches
    the recipe; with the build's seconds when it was built now."""
    out = build_dir()
    name = f"simplephone-bookworm-{arch}{'-test' if test_console else ''}"
    image = out / f"{name}.img"
    key_file = out / f"{name}.key"
    key = recipe_key()
    if image.exists() and key_file.exists() and key_file.read_text() == key:
        return image, None
    started = time.monotonic()
    options = ["--test-console"] if test_console else []
    subprocess.run(
        [str(BUILD_SCRIPT), "--arch", arch, "--out", str(out), *options, "--no-xz"], check=True
    )
    key_file.write_text(key)
    return image, time.monotonic() - started


def mcopy_in(image: Path, source: Path, name: str) -> None:
    """Copy `source` onto the image's boot partition as `name` (mtools, no mount)."""
    target = f"{image}@@{BOOT_OFFSET}"
    subprocess.run(["mcopy", "-o", "-i", target, str(source), f"::{name}"], check=True)


def mcopy_out(image: Path, name: str, dest: Path) -> None:
    subprocess.run(
        ["mcopy", "-n", "-i", f"{image}@@{BOOT_OFFSET}", f"::{name}", str(dest)], check=True
    )


class Guest:
    """One boot of a copy of the twin, driven through its serial console."""

    def __init__(
        self, image: Path, workdir: Path, boot_files: dict[str, Path], card_bytes: int = 0
    ) -> None:
        """`card_bytes`: the size of the SD card the image is written to, when
        bigger than the image (the copy is made that long, sparse)."""
        self.workdir = workdir
        self.disk = workdir / "disk.img"
        subprocess.run(["cp", "--sparse=always", str(image), str(self.disk)], check=True)
        if card_bytes > self.disk.stat().st_size:
            os.truncate(self.disk, card_bytes)
        for name, source in boot_files.items():
            mcopy_in(self.disk, source, name)
        self.copy_boot_files()
        self.console_log = workdir / "console.log"
        self._text = ""
        self._lock = threading.Condition()
        self._commands = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def copy_boot_files(self) -> None:
        """The kernel (`vmlinuz`), the initramfs (`initrd.img`) and `cmdline.txt`
        from the boot partition into the work folder, for qemu."""
        for name in ("vmlinuz", "initrd.img", "cmdline.txt"):
            mcopy_out(self.disk, name, self.workdir / name)

    def qemu_argv(self, cmdline: str) -> list[str]:
        """The machine: a PC under TCG booting the boot partition's kernel."""
        # fmt: off
        return [
            # x86-64-v2: the lgpio wheel (the [rpi] extra) has SSE4.1 instructions,
            # which qemu's default TCG CPU (qemu64) lacks.
            "qemu-system-x86_64", "-accel", "tcg", "-cpu", "Nehalem", "-m", "1024", "-smp", "2",
            "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", str(self.workdir / "vmlinuz"),
            "-initrd", str(self.workdir / "initrd.img"),
            "-append", cmdline,
            "-drive", f"file={self.disk},format=raw,if=virtio",
            "-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
        ]
        # fmt: on

    def boot(self) -> None:
        cmdline = (self.workdir / "cmdline.txt").read_text().strip()
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            self.qemu_argv(cmdline),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._read_console, daemon=True).start()

    def _read_console(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.console_log.open("wb") as log:
            while chunk := self.process.stdout.read1(4096):
                log.write(chunk)
                log.flush()
                with self._lock:
                    self._text += chunk.decode("utf-8", "replace")
                    self._lock.notify_all()
        with self._lock:
            self._lock.notify_all()

    def elapsed(self) -> float:
        """Seconds since qemu started."""
        return time.monotonic() - self.started

    @property
    def mark(self) -> int:
        """Where the console is now: `wait_for(..., since=mark)` sees only what follows."""
        with self._lock:
            return len(self._text)

    def tail(self, lines: int = 60) -> str:
        with self._lock:
            return "\n".join(CONTROL_SEQUENCE.sub("", self._text).splitlines()[-lines:])

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout: float, since: int = 0
    ) -> re.Match[str]:
        """The first match of `pattern` on the console after `since`."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = regex.search(self._text, since)
                if found:
                    return found
                left = deadline - time.monotonic()
                exited = self.process is not None and self.process.poll() is not None
                if left <= 0 or exited:
                    why = "qemu exited" if exited else f"not within {timeout:.0f} s"
                    raise GuestError(f"{regex.pattern!r}: {why}; console:\n{self.tail()}")
                self._lock.wait(min(left, 1.0))

    def run(self, command: str, timeout: float = 60.0) -> tuple[int, str]:
        """Run a shell command as root in the guest: (exit status, output).

        The output's lines are tagged in the guest, so the journal lines that
        the console interleaves are left out."""
        assert self.process is not None and self.process.stdin is not None
        self._commands += 1
        tag = f"@@cmd{self._commands}"
        since = self.mark
        # The markers are put together by the shell, so the echoed command line
        # never matches them.
        line = (
            f"{{ {command} ; }} 2>&1 | sed 's/^/{tag}'': /';"
            f" echo {tag}''-end-${{PIPESTATUS[0]}}@@\n"
        )
        self.process.stdin.write(line.encode())
        self.process.stdin.flush()
        end = self.wait_for(rf"{tag}-end-(\d+)@@", timeout, since)
        with self._lock:
            # Stripped here, as a chunk read may end inside a sequence.
            text = CONTROL_SEQUENCE.sub("", self._text[since : end.start()])
        prefix = f"{tag}: "
        output = [row[len(prefix) :] for row in text.splitlines() if row.startswith(prefix)]
        return int(end.group(1)), "".join(f"{row}\n" for row in output)

    def check(self, command: str, timeout: float = 60.0) -> str:
        """`run`, failing on a non-zero status."""
        status, output = self.run(command, timeout)
        if status != 0:
            raise GuestError(f"{command!r} exited {status}:\n{output}")
        return output

    def power_off(self) -> None:
        """Ask the guest to shut down: root's shell on the console (test build)."""
        assert self.process is not None and self.process.stdin is not None
        try:
            self.process.stdin.write(b"systemctl poweroff\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass

    def close(self, timeout: float = 120.0) -> int | None:
        """Power the guest off; qemu's exit status (None if it had to be killed)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.power_off()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.disk.unlink(missing_ok=True)


def booted_guest(
    guest_type: type[G], image: Path, folder: str, config: str, card_bytes: int = 0
) -> G:
    """A guest of `guest_type` booting a copy of `image` (on a card of
    `card_bytes`, see `Guest`), with `config` as the boot partition's
    simplephone.toml. Its work folder (`folder`, beside the image) is kept
    apart from pytest's tmp folders, which other pytest sessions rotate, so
    the console log stays after a failure."""
    workdir = image.parent / folder
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    config_file = workdir / "simplephone.toml"
    config_file.write_text(config)
    machine = guest_type(image, workdir, {"simplephone.toml": config_file}, card_bytes)
    machine.boot()
    return machine


def qemu_missing(qemu: str = "qemu-system-x86_64", packages: str = QEMU_PACKAGES) -> str | None:
    """Why the image cannot be built and booted here, or None."""
    for tool in (qemu, "mmdebstrap", "mcopy", "sfdisk", "git"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed; as root: apt-get install {packages}"
    if os.geteuid() != 0:
        return "building the image needs root (mmdebstrap's root mode)"
    return None
