"""The plugin guide's example (tests/example_plugin), pip-installed and run in a phone.

It is built and installed as a third party would: `pip install` of its own
project (here into a directory that goes on the phone's PYTHONPATH), found
through its `simplephone.plugins` entry point. bob calls alice, nobody
answers, alice's phone gives up after `calls.no_answer_timeout_s` (480), and
the plugin shows the missed call: `M:1` in the footer and bob's button
blinking red; a long press on `end` clears it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers.ports import free_port
from tests.phones import PhoneFactory, has_call, no_calls, phones

__all__ = ["phones"]

PROJECT = Path(__file__).with_name("example_plugin")
MISSED = {"color": "red", "pattern": "slow"}


def test_the_example_plugin_installs_and_shows_a_missed_call(
    phones: PhoneFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, PROJECT],
        check=True,
        capture_output=True,
    )
    a_port = free_port()
    bob, bob_uri = phones.direct("bob", [("Alice", f"sip:alice@127.0.0.1:{a_port}")])
    monkeypatch.setenv("PYTHONPATH", str(site))
    alice, _ = phones.direct(
        "alice",
        [("Bob", bob_uri)],
        port=a_port,
        calls={"no_answer_timeout_s": 1},
        plugins={"presence": {"enabled": False}},  # its layer would come first (Bob is there)
    )
    assert "plugin missed_calls: loaded" in alice.log_tail(100)

    bob.press("contact-1")
    alice.wait_for(has_call("ringing"), what="alice rings")
    bob.wait_for(no_calls, what="alice's phone gives up (480)")
    state = alice.wait_for(lambda s: s["screen"][-1] == "M:1", what="the missed call shown")
    assert state["buttons"]["contact-1"]["led"] == MISSED

    alice.press("end", hold_ms=1200)
    state = alice.wait_for(lambda s: s["screen"][-1] == "", what="the missed calls cleared")
    assert state["screen"][1:3] == ["1 missed", "cleared"]
    assert state["buttons"]["contact-1"]["led"] == {"color": "off", "pattern": "off"}
    assert alice.stop() == 0
    assert bob.stop() == 0
