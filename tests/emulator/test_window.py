"""The emulator's window under Xvfb: real clicks and keys, what it shows against
what the control interface reports, closing it, and no display at all."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from phone.api import address_key
from phone.control import ControlClient
from phone.demo import free_port, phone_config
from tests.emulator.conftest import require_pygame
from tests.emulator.phone_window import (
    EmulatorPhone,
    control_bitmap,
    led_colours,
    leds_from_state,
    window_bitmap,
)
from tests.emulator.x11 import Xvfb, assert_like_golden
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, has_call, no_calls, phones, render_config

__all__ = ["phones"]

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "emulator"


def screen_shows(text: str) -> Any:
    return lambda s: any(text in line for line in s["screen"])


def assert_window_shows_state(alice: EmulatorPhone, workdir: Path) -> None:
    """The window's LEDs and display equal the control interface's `state` and
    `screenshot`. The core redraws the display on its next tick (a message that
    timed out), so the two may differ for a moment: a few looks are allowed."""
    assert alice.window is not None
    layout = alice.layout
    for _ in range(10):
        state, bitmap = alice.state(), control_bitmap(alice)
        image = alice.window.screenshot()
        shown = window_bitmap(image, layout), led_colours(image, layout)
        expected = bitmap, expected_leds(leds_from_state(state), shown[1])
        if shown == expected:
            return
        time.sleep(0.1)
    assert shown[1] == expected[1]
    assert shown[0] == expected[0], "the window's display differs from the control screenshot"


def expected_leds(leds: dict[str, dict[str, str]], shown: dict[str, str]) -> dict[str, str]:
    """The colour each LED must show: a blinking one may be dark between blinks."""
    return {
        button: shown[button]
        if led["pattern"] not in ("steady", "off") and shown[button] == "off"
        else led["color"]
        for button, led in leds.items()
    }


def demo(x: Xvfb, workdir: Path, chat_after_s: float) -> EmulatorPhone:
    """`phone emulator --demo`, Carol's first message `chat_after_s` after alice is up."""
    args = ["--demo", "--sound", "none", "--demo-dir", str(workdir)]
    return EmulatorPhone(x, workdir, [*args, "--demo-chat-after", str(chat_after_s)], 4).start()


def blinking_shots(alice: EmulatorPhone, button: str) -> dict[str, Image.Image]:
    """Screenshots by the colour `button`'s LED shows, for 5 s or until it was
    seen lit and dark."""
    assert alice.window is not None
    seen: dict[str, Image.Image] = {}
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        image = alice.window.screenshot()
        seen[led_colours(image, alice.layout)[button]] = image
    return seen


def test_demo_click_bob_answer_with_enter_and_close(xvfb: Xvfb, tmp_path: Path) -> None:
    alice = demo(xvfb, tmp_path, chat_after_s=3600)  # Carol's message: the next test's
    bob = ControlClient(f"unix:{tmp_path / 'bob.sock'}")
    try:
        state = alice.wait_for(screen_shows("Ready"), what="alice ready")
        assert [b["label"] for b in state["buttons"].values()] == ["Bob", "Carol", "Team", None]
        # Presence straight from their phones: Bob available, Carol with DND on.
        alice.wait_for(
            lambda s: (
                [s["buttons"][b]["led"]["color"] for b in ("contact-1", "contact-2")]
                == ["green", "red"]
            ),
            timeout=30,
            what="Bob green, Carol red",
        )
        assert_window_shows_state(alice, tmp_path)
        assert alice.window is not None
        assert_like_golden(alice.window.screenshot(), SCREENSHOTS / "idle.png")

        alice.click("contact-1")  # a real pointer event on Bob's button
        state = alice.wait_for(lambda s: bool(s["calls"]), what="a call out")
        assert [(c["direction"], c["remote"]) for c in state["calls"]] == [
            ("out", state["buttons"]["contact-1"]["contact"])
        ]
        alice.wait_for(has_call("confirmed"), what="Bob answers")
        alice.wait_for(screen_shows("In call"), what="the call on screen")
        assert_window_shows_state(alice, tmp_path)
        alice.window.key("Escape")
        alice.wait_for(no_calls, what="Escape hangs up")

        bob.press("contact-1")  # Bob calls alice
        alice.wait_for(has_call("ringing"), what="alice rings")
        alice.wait_for(screen_shows("Incoming call"), what="the call on screen")
        assert_window_shows_state(alice, tmp_path)
        seen = blinking_shots(alice, "contact-1")
        assert set(seen) == {"green", "off"}, "Bob's LED does not blink green while he calls"
        assert_like_golden(seen["green"], SCREENSHOTS / "incoming-call.png")
        alice.window.key("Return")
        alice.wait_for(has_call("confirmed"), what="Enter answers")

        alice.window.close()  # during the call
        assert alice.wait_exit() == 0
        log = alice.log_path.read_text()
        assert "window closed" in log
        assert "ended: 200 OK" in log.split("window closed")[1]  # alice hung up
        assert "exited with status" not in log  # Bob and Carol stopped cleanly
    finally:
        bob.close()
        alice.stop()


def test_demo_carol_writes_and_team_shows_its_roster(xvfb: Xvfb, tmp_path: Path) -> None:
    alice = demo(xvfb, tmp_path, chat_after_s=1)
    try:
        state = alice.wait_for(lambda s: bool(s.get("messages")), what="Carol's message")
        loaded = {p["name"] for p in state["plugins"] if p["state"] == "loaded"}
        assert {"chat", "conference"} <= loaded
        carol = address_key(state["buttons"]["contact-2"]["contact"])
        assert [(address_key(m["from"]), m["direction"], m["read"]) for m in state["messages"]] == [
            (carol, "in", False)
        ]
        text = state["messages"][0]["text"]
        state = alice.wait_for(screen_shows("Carol:"), what="her message on the screen")
        shown = state["screen"]
        assert text.startswith(shown[shown.index("Carol:") + 1])
        # Unread: her LED winks in her presence colour (red, DND for her first 35 s).
        red_wink = {"color": "red", "pattern": "wink"}
        alice.wait_for(
            lambda s: s["buttons"]["contact-2"]["led"] == red_wink, what="Carol's LED: red wink"
        )
        assert_window_shows_state(alice, tmp_path)
        seen = blinking_shots(alice, "contact-2")
        assert set(seen) == {"red", "off"}, "Carol's LED does not wink red: unread, DND"
        assert_like_golden(seen["red"], SCREENSHOTS / "chat.png")
        assert alice.window is not None
        alice.window.key("Escape")  # read and dismissed
        alice.wait_for(lambda s: s["messages"][0]["read"], what="her message read")

        alice.click("contact-3")  # Team
        state = alice.wait_for(screen_shows("Team (3)"), what="the room and its count")
        roster = state["conference"]
        assert roster["subject"] == "Team"
        keys = [address_key(state["buttons"][b]["contact"]) for b in ("contact-1", "contact-2")]
        assert [(address_key(p["uri"]), p["name"]) for p in roster["participants"]] == [
            (keys[0], "Bob"),
            (keys[1], "Carol"),
            ("alice@127.0.0.1", None),  # the caller, who sent no display name
        ]
        assert [c["remote"] for c in state["calls"]] == [state["buttons"]["contact-3"]["contact"]]
        alice.wait_for(screen_shows("Carol"), what="the roster, past the arrivals")
        shown = alice.state()["screen"]
        assert shown[shown.index("Team (3)") :][:3] == ["Team (3)", "Bob", "Carol"]
        assert_window_shows_state(alice, tmp_path)
        assert_like_golden(alice.window.screenshot(), SCREENSHOTS / "conference.png")
        alice.click("contact-1", hold_ms=2300)  # held 2 s: Bob out of the room (REFER method=BYE)
        state = alice.wait_for(screen_shows("Team (2)"), what="Bob removed")
        assert [p["name"] for p in state["conference"]["participants"]] == ["Carol", None]
        alice.click("contact-1")  # a short press: Bob back in (REFER method=INVITE, he answers)
        alice.wait_for(screen_shows("Team (3)"), what="Bob invited back")
        alice.window.key("Escape")
        alice.wait_for(no_calls, what="Escape leaves the room")
        alice.window.close()
        assert alice.wait_exit() == 0
        assert "exited with status" not in alice.log_path.read_text()
    finally:
        alice.stop()


def alice_account(kamailio: Kamailio) -> dict[str, Any]:
    return {
        "uri": kamailio.uri("alice"),
        "password": kamailio.users["alice"],
        "registrar": kamailio.registrar_uri,
    }


@pytest.mark.kamailio
def test_closing_the_window_mid_call_hangs_up_and_unregisters(
    make_kamailio: Callable[..., Kamailio], phones: PhoneFactory, xvfb: Xvfb, tmp_path: Path
) -> None:
    # A server of its own: the suite's shared one may hold bindings for alice
    # from phones that earlier tests killed on purpose, and bob's last call
    # must find none but those of this alice.
    kamailio = make_kamailio()
    bob = phones.start(
        "bob",
        {**alice_account(kamailio), "uri": kamailio.uri("bob"), "password": kamailio.users["bob"]},
        [("Alice", kamailio.uri("alice"))],
    )
    config = render_config(
        alice_account(kamailio), [("Bob", kamailio.uri("bob"))], tmp_path, "alice"
    )
    alice = EmulatorPhone(
        xvfb, tmp_path, ["--config", str(config), "--sound", "none"], buttons=4
    ).start()
    try:
        for phone in (alice, bob):
            phone.wait_for(lambda s: s["registered"], what="registered")
        alice.click("contact-1")
        bob.wait_for(has_call("ringing"), what="bob rings")
        bob.press("answer")
        alice.wait_for(has_call("confirmed"), what="in a call")
        assert alice.window is not None
        alice.window.close()
        assert alice.wait_exit() == 0
        bob.wait_for(no_calls, what="alice hung up")
        bob.press("contact-1")
        state = bob.wait_for(screen_shows("404"), what="alice is gone")
        assert state["screen"][1] == "404 Not Found"  # no binding left in Kamailio
    finally:
        alice.stop()


def test_keys_resize_and_long_press(xvfb: Xvfb, tmp_path: Path) -> None:
    port = free_port()
    config = render_config(
        {"uri": f"sip:alice@127.0.0.1:{port}"},
        [("Bob", f"sip:bob@127.0.0.1:{free_port()}")],
        tmp_path,
        "alice",
        buttons=6,
    )
    alice = EmulatorPhone(
        xvfb, tmp_path, ["--config", str(config), "--sound", "none"], buttons=6
    ).start()
    try:
        assert alice.window is not None
        alice.wait_for(screen_shows("Ready"), what="ready")
        alice.window.key("d")
        alice.wait_for(lambda s: s["dnd"], what="d: DND on")
        alice.window.key("m")
        alice.wait_for(lambda s: s["muted"], what="m: muted")
        alice.window.key("minus")
        alice.wait_for(screen_shows("Volume 70%"), what="-: volume down")

        width, height = alice.window.size()
        alice.window.resize(width * 3 // 2, height * 3 // 2)
        assert alice.layout.scale == pytest.approx(1.5, abs=0.01)
        alice.click("mute")
        alice.wait_for(lambda s: not s["muted"], what="the Mute button, resized")
        alice.click("contact-1", hold_ms=1200)
        alice.wait_for(screen_shows("Bob"), what="a long press shows the name")
        assert_window_shows_state(alice, tmp_path)
        alice.window.close()
        assert alice.wait_exit() == 0
    finally:
        alice.stop()


@pytest.mark.parametrize("mode", ["demo", "config"])
def test_no_display_is_a_clear_error(tmp_path: Path, mode: str) -> None:
    require_pygame()
    config = render_config({"uri": f"sip:alice@127.0.0.1:{free_port()}"}, [], tmp_path, "alice")
    args = ["--demo-dir", str(tmp_path)] if mode == "demo" else ["--config", str(config)]
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run(
        [sys.executable, "-m", "phone", "emulator", "--sound", "none", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "the emulator needs a display and found none" in done.stderr
    assert "Traceback" not in done.stderr
    assert "exited with status" not in done.stderr


def test_phone_run_opens_the_window_for_kind_emulator(xvfb: Xvfb, tmp_path: Path) -> None:
    port = free_port()
    contact = ("Bob", f"sip:bob@127.0.0.1:{free_port()}")
    config = phone_config("alice", port, [contact], tmp_path, "emulator", {"sound": "none"})
    alice = EmulatorPhone(xvfb, tmp_path, ["--config", str(config)], 4, command="run").start()
    try:
        alice.wait_for(screen_shows("Ready"), what="ready")
        assert_window_shows_state(alice, tmp_path)
        assert alice.window is not None
        alice.window.close()
        assert alice.wait_exit() == 0
    finally:
        alice.stop()
