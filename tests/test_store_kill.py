"""Power cut during writes, as a process sees it: the writer is SIGKILLed at a
random moment, 100 times; after each kill the database is whole and holds
the last commit the writer reported.

SIGKILL loses no data the kernel already has, so this checks SQLite's
atomicity under our WAL settings (`phone.store`), not the fsyncs a real power
cut needs (synchronous=NORMAL may lose the last commits then, by design).
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.store_writer import contact_uri

pytestmark = pytest.mark.slow

KILLS = 100
ROOT = Path(__file__).resolve().parent.parent


def written(path: Path) -> tuple[str, int, int]:
    """integrity_check, and the newest contact and call the file holds."""
    db = sqlite3.connect(path)
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        (uri,) = db.execute("SELECT uri FROM contacts WHERE source = 'config'").fetchone()
        (call,) = db.execute("SELECT max(call_id) FROM call_log_calls").fetchone()
    finally:
        db.close()
    contact = int(uri.removeprefix("sip:c").removesuffix("@example.test"))
    assert contact_uri(contact) == uri
    return integrity, contact, call


def test_sigkill_during_writes_keeps_the_store_whole(tmp_path: Path) -> None:
    path = tmp_path / "phone.db"
    chance = random.Random(15)
    first = 0
    for kill in range(KILLS):
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.store_writer", str(path), str(first)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        committed = None
        for _ in range(chance.randint(1, 30)):
            line = writer.stdout.readline()
            assert line, f"writer {kill} ended early: {writer.wait()}"
            committed = int(line)
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=10) == -signal.SIGKILL
        writer.stdout.close()
        assert committed is not None
        integrity, contact, call = written(path)
        assert integrity == "ok", f"kill {kill}: {integrity}"
        assert contact >= committed, f"kill {kill}: contact {contact} < committed {committed}"
        assert call >= committed, f"kill {kill}: call {call} < committed {committed}"
        first = max(contact, call) + 1
