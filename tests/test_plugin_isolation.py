"""A third-party plugin that raises is disabled, and the phone keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest

from phone.demo import free_port
from tests.phones import PhoneFactory, has_call, install_plugin, phones

__all__ = ["phones"]

FAULTY = """
from phone.hookspecs import hookimpl


@hookimpl
def button_pressed(button, long_press):
    raise RuntimeError("faulty plugin: " + button)
"""


def test_raising_plugin_is_disabled_and_the_call_still_goes_out(
    phones: PhoneFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, "faulty", "faulty_plugin", FAULTY)
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
