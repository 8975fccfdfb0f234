"""pjsua2 objects referenced past `SipStack.stop` neither abort the process nor
touch a destroyed pjsua: used, they raise Python errors (phone/sip/lifetime.py).

Each scenario runs in a process of its own, whose exit status is checked: an
abort in a destructor at exit (SIGABRT) is the failure looked for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pjsua2")

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_objects_kept_past_stop_raise_when_used_and_the_process_exits_0(tmp_path: Path) -> None:
    done = run(["-m", "tests.sip.outlive_stack", str(tmp_path)], REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Assertion" not in done.stderr
    uses = json.loads(done.stdout.strip().splitlines()[-1])
    assert uses == {
        # The phone's own handles say why.
        "hang up": "SipStackStopped",
        "answer": "SipStackStopped",
        "transfer": "SipStackStopped",
        "call again": "SipStackStopped",
        "serve presence": "SipStackStopped",
        "call state": "disconnected",
        # pjsua2's objects were deleted before libDestroy: SWIG refuses them.
        "pjsua2 call": "TypeError",
        "call audio": "TypeError",
        "pjsua2 account": "TypeError",
        "wav mic": "TypeError",
        "wav speaker": "TypeError",
    }
    # The recorder was deleted by PhoneAudio.close, before libDestroy: its WAV is whole.
    assert (tmp_path / "speaker.wav").stat().st_size > 44


FAILING_TEST = """
import pjsua2 as pj

from tests.conftest import pj_endpoint, sip_transports

__all__ = ["pj_endpoint", "sip_transports"]


def test_fails_holding_a_call(sip_transports):
    account = pj.Account()
    config = pj.AccountConfig()
    config.idUri = f"sip:a@127.0.0.1:{sip_transports.udp_port}"
    account.create(config)
    call = pj.Call(account)
    call.makeCall(f"sip:b@127.0.0.1:{sip_transports.udp_port}", pj.CallOpParam(True))
    assert call is None, "fails on purpose: pytest keeps this frame in sys.last_traceback"
"""


def test_a_failed_test_holding_a_call_fails_without_aborting_pytest(tmp_path: Path) -> None:
    """The session's endpoint (tests/conftest.py) outlives the test; the
    traceback of the failure keeps its pjsua2 Call until pytest exits."""
    test_file = tmp_path / "test_holding_a_call.py"
    test_file.write_text(textwrap.dedent(FAILING_TEST))
    done = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)], tmp_path)
    assert "1 failed" in done.stdout, done.stdout[-3000:]
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stderr[-3000:]
