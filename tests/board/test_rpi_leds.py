"""RpiBoard's LEDs: kernel LED class writes, against a temp dir shaped like /sys/class/leds."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from luma.core.interface.serial import noop

from board.rpi import RpiBoard
from phone.board import LED_OFF, Led, LedColor, LedPattern
from phone.config import ConfigError

LEDS = {
    "contact-1": {"green": "sp:green:1", "red": "sp:red:1"},
    "contact-2": {"green": "sp:green:2"},
}


def fake_sysfs(root: Path, names: list[str]) -> None:
    """What the gpio-led overlay leaves: brightness, max_brightness and trigger per LED."""
    for name in names:
        folder = root / name
        folder.mkdir()
        (folder / "brightness").write_text("0\n")
        (folder / "max_brightness").write_text("1\n")
        (folder / "trigger").write_text("[none] timer heartbeat\n")


def state(root: Path, name: str) -> dict[str, str]:
    return {f.name: f.read_text().strip() for f in sorted((root / name).iterdir())}


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    fake_sysfs(tmp_path, ["sp:green:1", "sp:red:1", "sp:green:2"])
    return tmp_path


def started(board: RpiBoard) -> RpiBoard:
    asyncio.run(board.start(lambda event: None))  # no inputs: nothing keeps running
    return board


@pytest.fixture
def board(sysfs: Path) -> RpiBoard:
    return started(RpiBoard(4, {"leds_root": str(sysfs), "leds": LEDS}, open_bus=lambda d: noop()))


def test_steady_green_lights_only_green(board: RpiBoard, sysfs: Path) -> None:
    board.set_led("contact-1", Led(LedColor.GREEN, LedPattern.STEADY))
    assert state(sysfs, "sp:green:1") == {
        "brightness": "1",
        "max_brightness": "1",
        "trigger": "none",
    }
    assert state(sysfs, "sp:red:1")["brightness"] == "0"


@pytest.mark.parametrize(("pattern", "delay"), [(LedPattern.SLOW, "500"), (LedPattern.FAST, "125")])
def test_blinking_uses_the_timer_trigger(
    board: RpiBoard, sysfs: Path, pattern: LedPattern, delay: str
) -> None:
    board.set_led("contact-1", Led(LedColor.RED, pattern))
    red = state(sysfs, "sp:red:1")
    assert (red["trigger"], red["delay_on"], red["delay_off"]) == ("timer", delay, delay)
    assert state(sysfs, "sp:green:1")["brightness"] == "0"


def test_amber_is_both_colours(board: RpiBoard, sysfs: Path) -> None:
    board.set_led("contact-1", Led(LedColor.AMBER, LedPattern.STEADY))
    assert state(sysfs, "sp:green:1")["brightness"] == "1"
    assert state(sysfs, "sp:red:1")["brightness"] == "1"
    board.set_led("contact-1", Led(LedColor.AMBER, LedPattern.FAST))
    for name in ("sp:green:1", "sp:red:1"):
        assert state(sysfs, name)["trigger"] == "timer"
        assert state(sysfs, name)["delay_on"] == "125"


def test_off_stops_blinking_and_darkens(board: RpiBoard, sysfs: Path) -> None:
    board.set_led("contact-1", Led(LedColor.AMBER, LedPattern.SLOW))
    board.set_led("contact-1", LED_OFF)
    for name in ("sp:green:1", "sp:red:1"):
        assert state(sysfs, name)["trigger"] == "none"
        assert state(sysfs, name)["brightness"] == "0"


def test_changing_colour_moves_the_light(board: RpiBoard, sysfs: Path) -> None:
    board.set_led("contact-1", Led(LedColor.GREEN, LedPattern.FAST))
    board.set_led("contact-1", Led(LedColor.RED, LedPattern.STEADY))
    green, red = state(sysfs, "sp:green:1"), state(sysfs, "sp:red:1")
    assert (green["trigger"], green["brightness"]) == ("none", "0")
    assert (red["trigger"], red["brightness"]) == ("none", "1")


def test_one_colour_led_shows_any_colour(board: RpiBoard, sysfs: Path) -> None:
    board.set_led("contact-2", Led(LedColor.RED, LedPattern.STEADY))
    assert state(sysfs, "sp:green:2")["brightness"] == "1"


def test_brightness_follows_max_brightness(sysfs: Path) -> None:
    (sysfs / "sp:green:2" / "max_brightness").write_text("255\n")
    settings = {"leds_root": str(sysfs), "leds": {"contact-2": {"green": "sp:green:2"}}}
    board = started(RpiBoard(2, settings, open_bus=lambda d: noop()))
    board.set_led("contact-2", Led(LedColor.GREEN, LedPattern.STEADY))
    assert state(sysfs, "sp:green:2")["brightness"] == "255"


def test_leds_are_shown_from_start_and_darkened_at_close(sysfs: Path) -> None:
    (sysfs / "sp:red:1" / "brightness").write_text("1\n")  # left on by an earlier run
    board = RpiBoard(4, {"leds_root": str(sysfs), "leds": LEDS}, open_bus=lambda d: noop())
    board.set_led("contact-2", Led(LedColor.GREEN, LedPattern.SLOW))
    assert state(sysfs, "sp:green:2") == {  # not started: nothing written yet
        "brightness": "0",
        "max_brightness": "1",
        "trigger": "[none] timer heartbeat",
    }

    async def lifecycle() -> None:
        await board.start(lambda event: None)
        assert state(sysfs, "sp:green:2")["trigger"] == "timer"
        assert state(sysfs, "sp:red:1")["brightness"] == "0"
        board.set_led("contact-1", Led(LedColor.GREEN, LedPattern.STEADY))
        await board.close()

    asyncio.run(lifecycle())
    for name in ("sp:green:1", "sp:red:1", "sp:green:2"):
        assert state(sysfs, name)["trigger"] == "none"
        assert state(sysfs, name)["brightness"] == "0"


def test_missing_led_stops_start(tmp_path: Path) -> None:
    fake_sysfs(tmp_path, ["sp:green:1"])
    board = RpiBoard(4, {"leds_root": str(tmp_path), "leds": LEDS}, open_bus=lambda d: noop())
    with pytest.raises(ConfigError) as caught:
        asyncio.run(board.start(lambda event: None))
    assert caught.value.key == "board.rpi.leds.contact-1.red"
    assert "no LED 'sp:red:1'" in str(caught.value)


def test_failed_write_is_logged_once(
    board: RpiBoard, sysfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (sysfs / "sp:green:2" / "trigger").unlink()
    (sysfs / "sp:green:2" / "trigger").mkdir()  # every write now fails
    board.set_led("contact-2", Led(LedColor.GREEN, LedPattern.STEADY))
    board.set_led("contact-2", Led(LedColor.GREEN, LedPattern.FAST))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "sp:green:2" in errors[0].getMessage()
    assert board.led("contact-2") == Led(LedColor.GREEN, LedPattern.FAST)


def test_unwired_button_keeps_its_state_in_memory(board: RpiBoard) -> None:
    board.set_led("contact-3", Led(LedColor.RED, LedPattern.SLOW))
    assert board.led("contact-3") == Led(LedColor.RED, LedPattern.SLOW)
