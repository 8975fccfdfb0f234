"""Which boards `[board] kind` and `--board` take: the built-in ones, found
without reading the installed packages' metadata, and boards installed apart,
found through a real `*.dist-info/entry_points.txt` on sys.path, as `pip
install` leaves a third-party board."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import phone.board_kinds
from board.emulator import EmulatorBoard
from board.rpi import RpiBoard
from board.virtual import VirtualBoard
from phone.board_kinds import BOARD_GROUP, board_class, board_kinds, is_board_kind
from phone.config import ConfigError, parse_config

TOASTER = """
from phone.board import AudioEndpoints, Board

class ToasterBoard(Board):
    kind = "toaster"

    def _drive_led(self, button, led):
        pass

    @property
    def display(self):
        return None

    @property
    def audio(self):
        return AudioEndpoints()
"""


def config(kind: str, **sections: dict[str, object]) -> dict[str, object]:
    return {
        "account": {"uri": "sip:alice@192.0.2.7"},
        "board": {"kind": kind, "buttons": 2, **sections},
    }


@pytest.fixture
def toaster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A board distribution installed apart: the `toaster` kind."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sp_test_toaster.py").write_text(textwrap.dedent(TOASTER))
    dist = site / "sp_test_toaster-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sp-test-toaster\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[{BOARD_GROUP}]\ntoaster = sp_test_toaster:ToasterBoard\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("sp_test_toaster", None)


def test_built_in_boards_need_no_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan() -> dict[str, object]:
        raise AssertionError("read the installed packages' metadata")

    monkeypatch.setattr(phone.board_kinds, "_board_entry_points", no_scan)
    assert board_class("virtual") is VirtualBoard
    assert board_class("rpi") is RpiBoard
    assert board_class("emulator") is EmulatorBoard
    assert is_board_kind("rpi")
    parsed = parse_config(config("virtual", rpi={"sound": "usb"}, virtual={"mic": "a.wav"}))
    assert (parsed.board.kind, parsed.board.settings) == ("virtual", {"mic": "a.wav"})


def test_a_board_installed_apart_is_found(toaster: Path) -> None:
    assert board_kinds() == ("emulator", "rpi", "toaster", "virtual")
    assert is_board_kind("toaster")
    assert board_class("toaster").__name__ == "ToasterBoard"
    parsed = parse_config(config("toaster", toaster={}))
    assert parsed.board.kind == "toaster"
    # Its section may stay in the file while a built-in board is chosen.
    assert parse_config(config("virtual", toaster={})).board.kind == "virtual"


def test_an_unknown_kind_is_refused_with_the_installed_ones(toaster: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config("fridge"))
    assert caught.value.key == "board.kind"
    assert caught.value.message == "must be one of emulator, rpi, toaster, virtual, got 'fridge'"
    with pytest.raises(ConfigError) as caught:
        parse_config(config("virtual", fridge={}))
    assert caught.value.key == "board.fridge"
    with pytest.raises(LookupError, match="no board named 'fridge'.*toaster"):
        board_class("fridge")


def phone_cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`phone` in a fresh process that sees the boards installed in `site`."""
    return subprocess.run(
        [sys.executable, "-m", "phone", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(site), "PATH": ""},
    )


def test_run_takes_a_board_installed_apart(toaster: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")
    refused = phone_cli(toaster, "run", "--config", missing, "--board", "fridge")
    assert refused.returncode == 2
    assert "--board: invalid choice: 'fridge'" in refused.stderr
    assert "'toaster'" in refused.stderr
    # Taken as a choice, so the run goes on to read the (missing) config.
    taken = phone_cli(toaster, "run", "--config", missing, "--board", "toaster")
    assert taken.returncode == 1
    assert missing in taken.stderr and "invalid choice" not in taken.stderr


def test_check_config_takes_a_board_installed_apart(toaster: Path, tmp_path: Path) -> None:
    path = tmp_path / "toaster.toml"
    path.write_text(
        '[account]\nuri = "sip:alice@127.0.0.1:5099"\n'
        '[board]\nkind = "toaster"\nbuttons = 2\n[board.toaster]\n'
    )
    result = phone_cli(toaster, "check-config", str(path))
    assert (result.returncode, result.stdout.strip()) == (0, f"{path}: OK"), result.stderr
