"""The command line: exit codes and messages a user sees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from phone.demo import free_port
from phone.remote import PhoneExitError
from tests.phones import PhoneFactory, phones

__all__ = ["phones"]

GOOD = """[account]
uri = "sip:alice@127.0.0.1:5099"

[board]
kind = "virtual"
buttons = 2

[storage]
path = "{db}"
"""


def phone(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phone", *args], capture_output=True, text=True, timeout=30, env=env
    )


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(GOOD.format(db=tmp_path / "p.db"))
    result = phone("check-config", str(path))
    assert result.returncode == 0
    assert result.stdout.strip() == f"{path}: OK"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("buttons = 2", "buttons = 0"), "board.buttons: must be an integer from 1 to 64, got 0"),
        (('kind = "virtual"', 'kind = "toaster"'), "board.kind: must be one of"),
        (
            ("[storage]", '[board.virtual]\nmic = "/no/such.wav"\n[storage]'),
            "board.virtual.mic",
        ),
        (
            ("[storage]", "[plugins.nosuch]\n[storage]"),
            "plugins.nosuch: no such plugin is installed",
        ),
        (
            ("[storage]", "[plugins.call_log]\nmax_entires = 5\n[storage]"),
            "plugins.call_log.max_entires: unknown key (did you mean 'max_entries'?)",
        ),
        (
            ("[storage]", '[board.virtual]\nspeakr = "out.wav"\n[storage]'),
            "board.virtual.speakr: unknown key (did you mean 'speaker'?)",
        ),
    ],
)
def test_check_config_names_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.format(db=tmp_path / "p.db").replace(*change))
    result = phone("check-config", str(path))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_run_refuses_a_bad_config_before_starting(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.format(db=tmp_path / "p.db").replace("buttons = 2", "buttons = 99"))
    result = phone("run", "--config", str(path))
    assert result.returncode == 1
    assert "board.buttons" in result.stderr
    assert not (tmp_path / "p.db").exists()  # nothing half-started


def test_run_without_pjsua2_says_what_to_install(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pjsua2.py").write_text("raise ImportError('No module named pjsua2')\n")
    path = tmp_path / "good.toml"
    path.write_text(GOOD.format(db=tmp_path / "p.db"))
    result = phone("run", "--config", str(path), env={"PYTHONPATH": str(shadow), "PATH": ""})
    assert result.returncode == 2
    assert "pjsua2 is not installed" in result.stderr
    assert "image/README.md" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_says_when_the_sip_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        path = tmp_path / "good.toml"
        path.write_text(GOOD.format(db=tmp_path / "p.db").replace("5099", str(port)))
        result = phone("run", "--config", str(path))
    assert result.returncode == 2
    assert f"cannot listen for SIP on udp port {port}" in result.stderr


def test_run_says_when_the_control_port_is_taken(tmp_path: Path) -> None:
    """Not a traceback: one line, exit 2, as for the SIP port; the phone, which
    had started SIP by then, is stopped on the way out."""
    import socket

    sip_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        control = f"tcp:127.0.0.1:{taken.getsockname()[1]}"
        path = tmp_path / "good.toml"
        path.write_text(GOOD.format(db=tmp_path / "p.db").replace("5099", str(sip_port)))
        result = phone("run", "--config", str(path), "--control", control)
    assert result.returncode == 2, result.stderr
    assert f"cannot open the control interface on {control}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "SIP stack stopped" in result.stderr


def test_a_crash_leaves_the_python_stack_in_the_log(
    phones: PhoneFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`phone run` has faulthandler on (not inherited from the environment), and
    `RemotePhone.stop` reports the crash instead of returning quietly."""
    monkeypatch.delenv("PYTHONFAULTHANDLER", raising=False)
    alice, _ = phones.direct("alice")
    assert alice.process is not None
    os.kill(alice.process.pid, signal.SIGSEGV)
    alice.process.wait(10)
    with pytest.raises(PhoneExitError, match="signal SIGSEGV"):
        alice.stop()
    log = alice.log_path.read_text()
    assert "Fatal Python error: Segmentation fault" in log
    assert 'File "' in log.split("Fatal Python error")[1]  # the stack, frame by frame
