"""A third-party plugin that raises is disabled, and the phone keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers.ports import free_port
from tests.phones import PhoneFactory, has_call, install_plugin, phones

__all__ = ["phones"]

FAULTY = """
from phone.hookspecs import hookimpl


@hookimpl
def button_pressed(button, long_press):
    raise RuntimeError("faulty plugin: " + button)
"""


def install_for_next_phones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugins: dict[str, tuple[str, str]]
) -> None:
    """Install `plugins` (entry point: module name, source) where the phones
    started next find them (their PYTHONPATH)."""
    site = tmp_path / "site"
    site.mkdir()
    for entry_point, (module, source) in plugins.items():
        install_plugin(site, entry_point, module, source)
    monkeypatch.setenv("PYTHONPATH", str(site))


def test_raising_plugin_is_disabled_and_the_call_still_goes_out(
    phones: PhoneFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_for_next_phones(tmp_path, monkeypatch, {"faulty": ("faulty_plugin", FAULTY)})
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


# Notes the thread that imports it, that creates it and that calls its hooks.
THREAD_PROBE = """
import threading

from phone.hookspecs import hookimpl

IMPORTED_ON = threading.current_thread().name


class ThreadProbe:
    def __init__(self):
        self.created_on = threading.current_thread().name

    @hookimpl
    def control_state(self, phone):
        return {
            "probe": {
                "imported_on": IMPORTED_ON,
                "created_on": self.created_on,
                "hook_on": threading.current_thread().name,
            }
        }


def create_plugin(settings):
    return ThreadProbe()
"""

UNIMPORTABLE = """
raise RuntimeError("unimportable plugin")
"""


def test_plugins_import_off_the_loop_and_one_that_cannot_is_skipped(
    phones: PhoneFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = {
        "probe": ("thread_probe", THREAD_PROBE),
        "unimportable": ("unimportable_plugin", UNIMPORTABLE),
    }
    install_for_next_phones(tmp_path, monkeypatch, installed)
    alice, _ = phones.direct("alice", [("Bob", f"sip:bob@127.0.0.1:{free_port()}")])
    state = alice.wait_for(lambda s: s["started"], what="the phone started")
    # The module imports on a worker thread; the plugin is created and called on the loop's.
    assert state["probe"]["imported_on"] != "MainThread"
    assert state["probe"]["created_on"] == state["probe"]["hook_on"] == "MainThread"
    plugins = {p["name"]: p for p in state["plugins"]}
    assert plugins["probe"]["state"] == "loaded"
    assert plugins["unimportable"]["state"] == "disabled"
    assert plugins["unimportable"]["cause"] == "load"
    assert plugins["unimportable"]["reason"] == "cannot load: RuntimeError: unimportable plugin"
    assert alice.log_tail(200).count("plugin unimportable disabled: cannot load") == 1
    assert state["buttons"]["contact-1"]["label"] == "Bob"  # the phone runs on
