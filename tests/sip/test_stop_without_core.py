"""A stack that stops before a core took it refuses what comes meanwhile:
503 with Retry-After (RFC 3261 section 21.5.4), not a call that reaches
pjsua with no one to tell (phone/sip/endpoint.py, `SipStack.stop`).

The scenario runs in a process of its own (tests/sip/stop_without_core.py),
whose exit status is checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phone.sip.endpoint import RETRY_AFTER_WITHOUT_CORE_S
from tests.sip.test_outlive_stack import REPO, run

pytest.importorskip("pjsua2")


def test_a_call_while_a_stack_without_core_stops_is_refused_503(tmp_path: Path) -> None:
    done = run(["-m", "tests.sip.stop_without_core"], REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    final = json.loads(done.stdout.strip().splitlines()[-1])
    assert final == {"status": 503, "retry_after": str(RETRY_AFTER_WITHOUT_CORE_S)}
