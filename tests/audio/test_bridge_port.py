"""Bridge ports end safely, even at the worst moment (issue 14's segfault).

The scenarios run in a child process (`tests.audio.bridge_teardown`), so a
crash is an exit status here instead of the end of the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers.pulseaudio import PulseAudioServer

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 5


def run_scenario(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "tests.audio.bridge_teardown", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" ok") == ROUNDS, result.stdout
    # A callback that ran on a half-destroyed port prints its AttributeError.
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_alsa_sound_destroyed_while_the_clock_waits_for_the_gil(
    pulse: PulseAudioServer,
) -> None:
    assert_clean(
        run_scenario("alsa", str(ROUNDS), pulse.capture_pcm("mic"), pulse.playback_pcm("spk"))
    )


def test_a_port_dropped_without_destroy_is_ended_whole() -> None:
    pytest.importorskip("pjsua2")
    assert_clean(run_scenario("forgotten", str(ROUNDS)))


def test_ports_outliving_the_sip_stack_are_leaked_not_aborted() -> None:
    pytest.importorskip("pjsua2")
    result = run_scenario("late", str(ROUNDS))
    assert_clean(result)
    assert result.stderr.count("outlived the SIP stack; leaked") == ROUNDS
