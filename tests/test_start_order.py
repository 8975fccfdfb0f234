"""`phone run` sends its first REGISTER before it builds the board and the phone
(phone.cli, phone.sip.endpoint): a board that then fails, and requests that
come while the start waits for the REGISTER's answer."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

from phone.sip.message import SipMessage
from tests.emulator.conftest import require_pygame
from tests.peers.kamailio import Kamailio
from tests.phones import account, render_config, toml_value

pytestmark = pytest.mark.kamailio


def run_phone(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phone", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def assert_not_bound(kamailio: Kamailio, log: str) -> None:
    """The registrar has no binding left for the phone that wrote `log` (other
    tests' phones may be registered as alice meanwhile)."""
    listening = re.search(r"SIP listening on udp (\S+)", log)
    assert listening is not None, log
    assert not [b for b in kamailio.bindings("alice") if b.endswith("@" + listening[1])]


def test_a_board_without_its_display_unregisters_and_exits(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    require_pygame()
    lines = ["[account]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in account(kamailio, "alice").items()]
    lines += ["", "[board]", 'kind = "emulator"', "buttons = 4", "", "[board.emulator]"]
    lines += ['sound = "none"']
    lines += ["", "[storage]", f"path = {toml_value(str(tmp_path / 'alice.db'))}"]
    config = tmp_path / "alice.toml"
    config.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = run_phone(config, env)
    assert done.returncode == 1, done.stderr
    assert "the emulator needs a display and found none" in done.stderr
    assert "registered as sip:alice@" in done.stderr  # before the board was started
    assert "unregistered (200" in done.stderr
    assert "Traceback" not in done.stderr
    assert_not_bound(kamailio, done.stderr)


def test_board_settings_refused_after_the_register_unregister(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    config = render_config(
        account(kamailio, "alice"), [], tmp_path, "alice", board={"speakr": "x.wav"}
    )
    done = run_phone(config)
    assert done.returncode == 1, done.stderr
    assert "board.virtual.speakr: unknown key (did you mean 'speaker'?)" in done.stderr
    assert "registered as sip:alice@" in done.stderr
    assert "unregistered (200" in done.stderr
    assert "Traceback" not in done.stderr
    assert_not_bound(kamailio, done.stderr)


# A SIP stack started as `phone run` starts it, with a registrar that never
# answers: it polls pjsip for the answer once the test has sent its request.
# pjlib logs on stdout too: the script's lines start with a word of their own.
STARTING_STACK = """
import sys
from phone.config import load_config
from phone.sip.endpoint import SipStack

config = load_config(sys.argv[1])
sip = SipStack(config.account, config.calls, None)
sip.start()
print("port", sip.local_port, flush=True)
sys.stdin.readline()
sip.await_registration(1.0)
print("registration", "answered" if sip.account.last_code else "unanswered", flush=True)
"""


def said(out: IO[str], word: str) -> str:
    """What the script printed after `word`."""
    for line in out:
        if line.startswith(word + " "):
            return line.split(" ", 1)[1].strip()
    raise AssertionError(f"the script ended without saying {word!r}")


def test_a_request_while_the_register_waits_is_answered_503(tmp_path: Path) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as registrar,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller,
    ):
        registrar.bind(("127.0.0.1", 0))
        caller.bind(("127.0.0.1", 0))
        caller.settimeout(10)
        registrar_port = registrar.getsockname()[1]
        acc = {
            "uri": "sip:alice@example.test",
            "password": "secret",
            "registrar": f"sip:127.0.0.1:{registrar_port}",
        }
        config = render_config(acc, [], tmp_path, "alice")
        proc = subprocess.Popen(
            [sys.executable, "-c", STARTING_STACK, str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            phone_port = int(said(proc.stdout, "port"))
            caller_port = caller.getsockname()[1]
            caller.sendto(
                (
                    f"INVITE sip:alice@127.0.0.1:{phone_port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP 127.0.0.1:{caller_port};branch=z9hG4bK-early-1\r\n"
                    "Max-Forwards: 70\r\n"
                    f"From: <sip:scanner@127.0.0.1:{caller_port}>;tag=early\r\n"
                    f"To: <sip:alice@127.0.0.1:{phone_port}>\r\n"
                    "Call-ID: early-invite@127.0.0.1\r\n"
                    "CSeq: 1 INVITE\r\n"
                    f"Contact: <sip:scanner@127.0.0.1:{caller_port}>\r\n"
                    "Content-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", phone_port),
            )
            proc.stdin.write("go\n")
            proc.stdin.flush()
            answer = SipMessage.parse(caller.recvfrom(65535)[0])
            assert said(proc.stdout, "registration") == "unanswered"
        finally:
            stderr = proc.communicate(timeout=30)[1]
        assert proc.returncode == 0, stderr
    assert answer.status == 503
    assert answer.header("retry-after") == "1"
    assert answer.header("call-id") == "early-invite@127.0.0.1"
