"""A full disk on the data directory: a real filesystem (a small tmpfs mounted
for the test) filled to the last byte. The phone says so on its screen once,
calls go on, and the store is written again once there is room."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.ports import free_port
from tests.phones import PhoneFactory, call_and_hang_up, phones

__all__ = ["phones"]

pytestmark = pytest.mark.slow

TMPFS_SIZE = "1m"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "data"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem has no byte left."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def footer(state: dict[str, object]) -> str:
    screen = state["screen"]
    assert isinstance(screen, list)
    return str(screen[-1])


def test_full_disk_is_shown_and_calls_go_on(phones: PhoneFactory, data_dir: Path) -> None:
    a_port, b_port = free_port(), free_port()
    a_uri, b_uri = f"sip:alice@127.0.0.1:{a_port}", f"sip:bob@127.0.0.1:{b_port}"
    alice, _ = phones.direct("alice", [("Bob", b_uri)], port=a_port, storage=data_dir / "a.db")
    bob, _ = phones.direct("bob", [("Alice", a_uri)], port=b_port)
    call_and_hang_up(alice, bob)  # the call log's table is made while there is room
    assert "DISK!" not in footer(alice.state())

    filler = fill(data_dir)
    call_and_hang_up(alice, bob)
    alice.wait_for(lambda s: "DISK!" in footer(s), what="the full-disk indicator")
    call_and_hang_up(bob, alice)  # calls go on, both ways
    assert "DISK!" in footer(alice.state())
    log = alice.log_path.read_text()
    assert log.count("disk full, nothing is saved") == 1
    assert "plugin call_log: disabled" not in log and "raised" not in log

    filler.unlink()
    call_and_hang_up(alice, bob)
    state = alice.wait_for(lambda s: "DISK!" not in footer(s), what="room again")
    assert all(p["state"] == "loaded" for p in state["plugins"])
    assert "writable again" in alice.log_path.read_text()
    assert alice.stop() == 0
    assert bob.stop() == 0
