"""RpiBoard's LEDs: kernel LED class writes, against a temp dir shaped like /sys/class/leds."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from luma.core.interface.serial import noop

from board import rpi
from board.rpi import RpiBoard, SysfsLed
from phone.board import LED_OFF, Led, LedColor, LedPattern
from phone.config import ConfigError

REPO = Path(__file__).resolve().parents[2]
UDEV_RULES = REPO / "image" / "rootfs" / "etc" / "udev" / "rules.d" / "60-simplephone.rules"
SERVICE = REPO / "image" / "rootfs" / "etc" / "systemd" / "system" / "simplephone.service"
LEDS = {
    "contact-1": {"green": "sp:green:1", "red": "sp:red:1"},
    "contact-2": {"green": "sp:green:2"},
}


def fake_sysfs(root: Path, names: list[str]) -> None:
    """What a kernel LED class device shows: brightness, max_brightness and trigger per LED."""
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


def refuse_delays_until(
    monkeypatch: pytest.MonkeyPatch, allowed: Callable[[], bool]
) -> list[tuple[str, str]]:
    """The image's sysfs: the timer trigger's files are root's until udev's change
    rule gives them to the gpio group (`allowed()`); the writes that got through."""
    write = SysfsLed._write
    done: list[tuple[str, str]] = []

    def guarded(self: SysfsLed, attribute: str, value: str) -> None:
        if attribute.startswith("delay_") and not allowed():
            raise PermissionError(13, "Permission denied", str(self._folder / attribute))
        write(self, attribute, value)
        done.append((attribute, value))

    monkeypatch.setattr(SysfsLed, "_write", guarded)
    return done


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def test_blinking_waits_for_udev_to_give_the_delay_files(
    board: RpiBoard, sysfs: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    udev_ran = asyncio.Event()
    done = refuse_delays_until(monkeypatch, udev_ran.is_set)

    async def scenario() -> None:
        board.set_led("contact-1", Led(LedColor.RED, LedPattern.FAST))
        assert state(sysfs, "sp:red:1")["trigger"] == "timer"
        assert "delay_on" not in state(sysfs, "sp:red:1")  # refused, not failed
        asyncio.get_running_loop().call_later(0.1, udev_ran.set)
        await until(lambda: ("delay_off", "125") in done, "the delays are written")

    asyncio.run(scenario())
    red = state(sysfs, "sp:red:1")
    assert (red["trigger"], red["delay_on"], red["delay_off"]) == ("timer", "125", "125")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_led_turned_off_before_udev_ran_gets_no_late_delays(
    board: RpiBoard, sysfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    udev_ran = asyncio.Event()
    done = refuse_delays_until(monkeypatch, udev_ran.is_set)

    async def scenario() -> None:
        board.set_led("contact-2", Led(LedColor.GREEN, LedPattern.SLOW))
        board.set_led("contact-2", LED_OFF)
        udev_ran.set()
        await asyncio.sleep(rpi.DELAY_RETRY_S * 4)

    asyncio.run(scenario())
    assert not [attribute for attribute, _ in done if attribute.startswith("delay_")]
    assert state(sysfs, "sp:green:2")["trigger"] == "none"


def test_delay_files_never_given_are_logged_once(
    board: RpiBoard,
    sysfs: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(rpi, "DELAY_RETRY_S", 0.001)
    monkeypatch.setattr(rpi, "DELAY_RETRIES", 3)
    refuse_delays_until(monkeypatch, lambda: False)  # no udev rule

    async def scenario() -> None:
        board.set_led("contact-2", Led(LedColor.GREEN, LedPattern.FAST))
        await until(lambda: bool(caplog.records), "the failure is logged")
        board.set_led("contact-2", Led(LedColor.GREEN, LedPattern.SLOW))
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "delay_on" in errors[0].getMessage()


def _udev_leds_rules() -> list[dict[str, str | set[str]]]:
    """The image's rules for the LED class: their ACTION, TRIGGER and the files
    whose group they set with chgrp and make group-writable with chmod g+w."""
    rules: list[dict[str, str | set[str]]] = []
    for line in UDEV_RULES.read_text().splitlines():
        if line.startswith("#") or 'SUBSYSTEM=="leds"' not in line:
            continue
        runs = re.findall(r'RUN\+="([^"]*)"', line)
        chgrp = {
            path for run in runs if run.startswith("/bin/chgrp gpio ") for path in run.split()[2:]
        }
        chmod = {
            path for run in runs if run.startswith("/bin/chmod g+w ") for path in run.split()[2:]
        }
        action = re.search(r'ACTION=="([^"]*)"', line)
        trigger = re.search(r'ENV\{TRIGGER\}=="([^"]*)"', line)
        rules.append(
            {
                "action": action.group(1) if action else "",
                "trigger": trigger.group(1) if trigger else "",
                "files": {path.removeprefix("/sys%p/") for path in chgrp & chmod},
            }
        )
    return rules


def test_the_image_gives_the_service_every_led_file_the_board_writes(
    sysfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: set[str] = set()
    write = SysfsLed._write

    def recording(self: SysfsLed, attribute: str, value: str) -> None:
        written.add(attribute)
        write(self, attribute, value)

    monkeypatch.setattr(SysfsLed, "_write", recording)
    led = SysfsLed(sysfs, "sp:green:1")
    led.on()
    led.off()
    at_add = set(written)
    led.blink(125, 125)
    with_timer = written - at_add
    assert at_add == {"trigger", "brightness"} and with_timer == {"delay_on", "delay_off"}

    rules = _udev_leds_rules()
    given_at_add = {
        f for r in rules if r["action"] == "add" and not r["trigger"] for f in r["files"]
    }
    given_with_timer = {
        f for r in rules if r["action"] == "change" and r["trigger"] == "timer" for f in r["files"]
    }
    assert at_add <= given_at_add
    assert with_timer <= given_with_timer
    groups = re.search(r"^SupplementaryGroups=(.*)$", SERVICE.read_text(), re.MULTILINE)
    assert groups is not None and "gpio" in groups.group(1).split()
