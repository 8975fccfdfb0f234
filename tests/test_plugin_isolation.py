"""A third-party plugin that raises is disabled, and the phone keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers.ports import free_port
from tests.phones import PhoneFactory, has_call, phones

__all__ = ["phones"]

FAULTY = """
from phone.hookspecs import hookimpl


@hookimpl
def button_pressed(button, long_press):
    raise RuntimeError("faulty plugin: " + button)
"""


def install_faulty_plugin(site: Path) -> None:
    """A real distribution on the path, found through its entry point."""
    (site / "faulty_plugin.py").write_text(FAULTY)
    meta = site / "faulty_plugin-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: faulty-plugin\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text("[simplephone.plugins]\nfaulty = faulty_plugin\n")


def test_raising_plugin_is_disabled_and_the_call_still_goes_out(
    phones: PhoneFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_faulty_plugin(site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    b_port = free_port()
    alice, _ = phones.direct("alice", [("Bob", f"sip:bob@127.0.0.1:{b_port}")])
    monkeypatch.delenv("PYTHONPATH")
    bob, _ = phones.direct("bob", [], port=b_port)

    alice.press("contact-1")
    bob.wait_for(has_call("ringing"), what="the call went out despite the plugin")
    state = alice.state()
    assert state["screen"][1:3] == ["Plugin faulty", "disabled:"]
    assert "plugin faulty disabled: button_pressed raised RuntimeError" in alice.log_tail(200)
    alice.press("end")
    alice.wait_for(lambda s: not s["calls"])
    alice.press("contact-1")  # the plugin is gone: no second failure
    bob.wait_for(has_call("ringing"))
    assert alice.log_tail(200).count("plugin faulty disabled") == 1
