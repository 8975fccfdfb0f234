"""RpiBoard's wired buttons and LEDs as lines of the header's GPIO chip
(board/gpio.py), on `SimulatedChip`: its key request's fd carries
`struct gpio_v2_line_event` records, read through the loop as the kernel's are
(this machine has no /dev/gpiochip and its kernel no gpio-sim)."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import gpiod
import pytest
from gpiod.line import Bias, Direction, Edge
from luma.core.interface.serial import noop

from board.gpio import SimulatedChip, key_settings, open_header_chip
from board.rpi import RpiBoard
from phone.board import ButtonEvent, Led, LedColor, LedPattern
from phone.config import ConfigError

WIRING = {
    "buttons": {"contact-1": {"key": 4, "green": 17, "red": 27}, "end": {"key": 26}},
}


def wired_board(
    chip: Any, settings: dict[str, Any] | None = None, open_chip: Callable[[], Any] | None = None
) -> RpiBoard:
    return RpiBoard(
        2,
        settings or {"wiring": WIRING},
        open_chip=open_chip or (lambda: chip),
        open_bus=lambda display: noop(),
    )


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.005)


def test_the_keys_are_one_request_pulled_up_active_low_debounced_on_both_edges() -> None:
    chip = SimulatedChip()
    board = wired_board(chip)

    async def scenario() -> list[dict[int, Any]]:
        await board.start(lambda event: None)
        requested = [dict(request.settings) for request in chip.requests]
        await board.close()
        return requested

    requested = asyncio.run(scenario())
    keys = [r for r in requested if 4 in r]
    assert len(keys) == 1 and set(keys[0]) == {4, 26}
    settings = keys[0][4]
    assert (settings.direction, settings.edge_detection, settings.bias) == (
        Direction.INPUT,
        Edge.BOTH,
        Bias.PULL_UP,
    )
    assert settings.active_low
    assert settings.debounce_period > timedelta(0)
    leds = {gpio: s.direction for r in requested if 4 not in r for gpio, s in r.items()}
    assert leds == {17: Direction.OUTPUT, 27: Direction.OUTPUT}
    assert chip.requests == []  # closing gave every line back


def test_a_pulled_low_line_is_a_press_and_letting_go_a_release() -> None:
    chip = SimulatedChip()
    board = wired_board(chip)
    events: list[ButtonEvent] = []

    async def scenario() -> None:
        await board.start(events.append)
        chip.pull(4, low=True)
        chip.pull(26, low=True)
        chip.pull(4, low=False)
        await until(lambda: len(events) == 3)
        await board.close()

    asyncio.run(scenario())
    assert [(e.button, e.down) for e in events] == [
        ("contact-1", True),
        ("end", True),
        ("contact-1", False),
    ]
    assert events[0].at <= events[1].at <= events[2].at


def test_wired_leds_light_per_colour_and_blink_from_the_loop() -> None:
    chip = SimulatedChip()
    board = wired_board(chip)
    seen: dict[str, tuple[bool, bool]] = {}

    async def scenario() -> None:
        board.set_led("contact-1", Led(LedColor.GREEN, LedPattern.STEADY))  # shown at start
        await board.start(lambda event: None)
        seen["green"] = (chip.value(17), chip.value(27))
        board.set_led("contact-1", Led(LedColor.AMBER, LedPattern.STEADY))
        seen["amber"] = (chip.value(17), chip.value(27))
        board.set_led("contact-1", Led(LedColor.RED, LedPattern.FAST))
        seen["blink"] = (chip.value(17), chip.value(27))
        await until(lambda: not chip.value(27))
        await until(lambda: chip.value(27))
        board.set_led("contact-1", Led(LedColor.OFF, LedPattern.STEADY))
        seen["off"] = (chip.value(17), chip.value(27))
        await board.close()

    asyncio.run(scenario())
    assert seen == {
        "green": (True, False),
        "amber": (True, True),
        "blink": (False, True),
        "off": (False, False),
    }


def test_leds_by_gpio_number_in_the_leds_table_are_lines_too() -> None:
    chip = SimulatedChip()
    board = wired_board(chip, {"leds": {"contact-2": {"red": 22}}})

    async def scenario() -> bool:
        await board.start(lambda event: None)
        board.set_led("contact-2", Led(LedColor.RED, LedPattern.STEADY))
        lit = chip.value(22)
        await board.close()
        return lit

    assert asyncio.run(scenario())


def start_refused(board: RpiBoard) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        asyncio.run(board.start(lambda event: None))
    return caught.value


def test_a_key_line_another_program_holds_names_the_key_pin_and_holder() -> None:
    chip = SimulatedChip(busy={26: "gpio-keys"})
    error = start_refused(wired_board(chip))
    assert error.key == "board.rpi.wiring.buttons.end.key"
    assert error.message == "GPIO26 is in use by gpio-keys"
    assert chip.requests == []  # the LEDs claimed before were given back


def test_a_busy_led_line_names_its_key() -> None:
    chip = SimulatedChip(busy={27: "sysfs"})
    error = start_refused(wired_board(chip))
    assert error.key == "board.rpi.wiring.buttons.contact-1.red"
    assert "GPIO27 is in use by sysfs" in error.message


class RefusingChip(SimulatedChip):
    """A chip whose requests the kernel refuses with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def request_lines(self, config: Any, consumer: str | None = None) -> Any:
        raise OSError(self.code, "refused")


def test_a_refused_permission_says_which_pin_and_the_group() -> None:
    error = start_refused(wired_board(RefusingChip(errno.EACCES)))
    assert error.key == "board.rpi.wiring.buttons.contact-1.green"
    assert "GPIO17" in error.message and "group gpio" in error.message


def test_another_refusal_names_every_pin_of_the_request() -> None:
    board = wired_board(RefusingChip(errno.EINVAL), {"wiring": {"buttons": {"end": {"key": 26}}}})
    error = start_refused(board)
    assert error.key == "board.rpi.wiring.buttons.end.key"
    assert "GPIO26 (board.rpi.wiring.buttons.end.key)" in error.message


def test_no_header_chip_is_a_config_error_naming_a_wired_key(tmp_path: Path) -> None:
    settings = {"wiring": {"buttons": {"end": {"key": 26}}}}
    board = wired_board(None, settings, open_chip=lambda: open_header_chip(tmp_path))
    error = start_refused(board)
    assert error.key == "board.rpi.wiring.buttons.end.key"
    assert error.message.startswith("no GPIO chip labelled pinctrl-bcm2835 or pinctrl-bcm2711")


def test_a_chip_the_phone_may_not_open_names_the_first_wired_pin() -> None:
    def refuse() -> Any:
        raise PermissionError(errno.EACCES, "cannot open /dev/gpiochip0: Permission denied")

    error = start_refused(wired_board(None, open_chip=refuse))
    assert error.key == "board.rpi.wiring.buttons.contact-1.green"
    assert error.message == "cannot open /dev/gpiochip0: Permission denied"


def test_the_header_chip_is_found_by_label_only(tmp_path: Path) -> None:
    (tmp_path / "gpiochip0").write_text("")  # not a character device: passed over
    with pytest.raises(OSError, match=f"no GPIO chip under {tmp_path}"):
        open_header_chip(tmp_path)


def test_simulated_events_are_gpiods_own_edge_events() -> None:
    chip = SimulatedChip()
    request = chip.request_lines({(5,): key_settings()})
    chip.pull(5, low=True)
    (event,) = request.read_edge_events()
    assert isinstance(event, gpiod.EdgeEvent)
    assert (event.event_type, event.line_offset) == (gpiod.EdgeEvent.Type.RISING_EDGE, 5)
    request.release()
