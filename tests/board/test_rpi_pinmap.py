"""The pin map (`[board.rpi.wiring]`): its checks and the pins it wires (the
board's use of them: test_rpi_gpio.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from board.pinmap import DEFAULT_WIRING, WiredPin, wired_pins
from board.rpi import RpiBoard
from phone.config import ConfigError


def wiring(**buttons: dict[str, int]) -> dict[str, Any]:
    return {"buttons": buttons}


def test_the_default_pin_map_is_valid_and_lists_its_pins_key_first() -> None:
    settings = RpiBoard.validate_settings({"wiring": copy.deepcopy(DEFAULT_WIRING)})
    wired = settings["wiring"]
    assert wired == DEFAULT_WIRING
    pins = wired_pins(wired)
    assert pins[:3] == [
        WiredPin(4, "contact-1", "key"),
        WiredPin(17, "contact-1", "green"),
        WiredPin(27, "contact-1", "red"),
    ]
    assert pins[-1] == WiredPin(26, "end", "key")
    assert pins[-1].key == "board.rpi.wiring.buttons.end.key"
    assert RpiBoard.validate_settings(settings) == settings  # normalising twice changes nothing


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        (
            {"wiring": wiring(**{"contact-1": {"key": 4, "green": 17}, "contact-2": {"red": 17}})},
            "board.rpi.wiring.buttons.contact-2.red",
            "GPIO17 is already board.rpi.wiring.buttons.contact-1.green",
        ),
        (
            {"wiring": wiring(**{"contact-1": {"key": 28}})},
            "board.rpi.wiring.buttons.contact-1.key",
            "40-pin header (0 to 27), got 28",
        ),
        (
            {"wiring": wiring(**{"contact-1": {"key": "4"}})},
            "board.rpi.wiring.buttons.contact-1.key",
            "got '4'",
        ),
        (
            {"wiring": wiring(**{"contact-1": {"key": 3}})},
            "board.rpi.wiring.buttons.contact-1.key",
            "GPIO3 is taken by I2C (the display)",
        ),
        (
            {"wiring": wiring(**{"end": {"key": 1}})},
            "board.rpi.wiring.buttons.end.key",
            "GPIO1 is taken by the HAT ID EEPROM",
        ),
        (
            {"display": {"bus": "spi"}, "wiring": wiring(**{"contact-1": {"key": 10}})},
            "board.rpi.wiring.buttons.contact-1.key",
            "GPIO10 is taken by SPI (the display)",
        ),
        (
            {"display": {"bus": "spi"}, "wiring": wiring(**{"contact-1": {"red": 24}})},
            "board.rpi.wiring.buttons.contact-1.red",
            "GPIO24 is taken by the display's DC line",
        ),
        (
            {"wiring": wiring(**{"answer": {"key": 5, "red": 6}})},
            "board.rpi.wiring.buttons.answer.red",
            "contact-N",
        ),
        ({"wiring": wiring(**{"dnd": {}})}, "board.rpi.wiring.buttons.dnd.key", "missing"),
        ({"wiring": wiring(hangup={"key": 5})}, "board.rpi.wiring.buttons.hangup", "no button"),
        (
            {"wiring": wiring(**{"contact-1": {"key": 5, "blue": 6}})},
            "board.rpi.wiring.buttons.contact-1.blue",
            "unknown key",
        ),
        ({"wiring": {"sound": "usb"}}, "board.rpi.wiring.buttons", "missing"),
        (
            {"wiring": {"sound": "hifiberry-dac", "buttons": {"contact-1": {"key": 5}}}},
            "board.rpi.wiring.sound",
            "cannot load; use a USB sound card",
        ),
        (
            {"leds": {"contact-1": {"green": 9}}, "wiring": wiring(**{"contact-1": {"red": 5}})},
            "board.rpi.leds.contact-1",
            "wired in board.rpi.wiring.buttons.contact-1",
        ),
    ],
)
def test_a_bad_pin_map_names_the_key_and_the_pin(
    section: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RpiBoard.validate_settings(section)
    assert caught.value.key == key
    assert message in caught.value.message


def test_a_pin_map_wider_than_the_board_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        RpiBoard(2, {"wiring": wiring(**{"contact-3": {"key": 5}})})
    assert caught.value.key == "board.rpi.wiring.buttons.contact-3"
