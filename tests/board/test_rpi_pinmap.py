"""The pin map (`[board.rpi.wiring]`): its checks, what the board derives from
it, and a board wired by it reading keys and driving LEDs."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
from evdev import ecodes
from luma.core.interface.serial import noop

from board.pinmap import (
    BEGIN_MARKER,
    DEFAULT_WIRING,
    END_MARKER,
    GPIO_KEYS_PHYS,
    config_txt,
    derived_inputs,
    derived_keys,
    derived_leds,
)
from board.rpi import RpiBoard
from phone.board import ButtonEvent, Led, LedColor, LedPattern
from phone.config import ConfigError

from .fake_input import InputBench
from .test_rpi_leds import fake_sysfs, state


def wiring(**buttons: dict[str, int]) -> dict[str, Any]:
    return {"buttons": buttons}


def test_the_default_pin_map_is_valid_and_derives_keys_leds_and_inputs() -> None:
    settings = RpiBoard.validate_settings({"wiring": copy.deepcopy(DEFAULT_WIRING)})
    wired = settings["wiring"]
    assert wired == DEFAULT_WIRING
    assert derived_keys(wired) == {
        "KEY_F1": "contact-1",
        "KEY_F2": "contact-2",
        "KEY_F3": "contact-3",
        "KEY_F4": "contact-4",
        "KEY_HANGUP_PHONE": "end",
    }
    assert derived_inputs(wired)[0] == "gpio-keys:KEY_F1"
    assert derived_leds(wired)["contact-2"] == {
        "green": "simplephone:green:contact-2",
        "red": "simplephone:red:contact-2",
    }
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
            {"wiring": {"sound": "hifiberry-dac", "buttons": {"contact-1": {"green": 19}}}},
            "board.rpi.wiring.buttons.contact-1.green",
            "GPIO19 is taken by I2S (the hifiberry-dac sound card)",
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
            {"wiring": {"sound": "Hifi Berry", "buttons": {}}},
            "board.rpi.wiring.sound",
            "overlay name",
        ),
        (
            {
                "inputs": ["USB Keypad"],
                "keys": {"KEY_F1": "answer"},
                "wiring": wiring(**{"contact-1": {"key": 5}}),
            },
            "board.rpi.keys.KEY_F1",
            "the pin map gives contact-1's key",
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


def test_config_txt_has_markers_the_buses_and_one_overlay_per_pin() -> None:
    settings = RpiBoard.validate_settings(
        {
            "wiring": {
                "sound": "hifiberry-dac",
                "buttons": {"contact-1": {"key": 4, "green": 17}, "answer": {"key": 5}},
            }
        }
    )
    assert config_txt(settings["wiring"], settings["display"]) == [
        BEGIN_MARKER,
        "[all]",
        "dtparam=i2c_arm=on",
        "dtparam=i2c_arm_baudrate=400000",
        "dtparam=audio=off",
        "dtoverlay=hifiberry-dac",
        f"dtoverlay=gpio-key,gpio=4,keycode={ecodes.KEY_F1},label=contact-1",
        "dtoverlay=gpio-led,gpio=17,label=simplephone:green:contact-1",
        f"dtoverlay=gpio-key,gpio=5,keycode={ecodes.KEY_PICKUP_PHONE},label=answer",
        END_MARKER,
    ]
    spi = RpiBoard.validate_settings(
        {"display": {"bus": "spi"}, "wiring": wiring(**{"contact-1": {"key": 4}})}
    )
    lines = config_txt(spi["wiring"], spi["display"])
    assert "dtparam=spi=on" in lines
    assert not any("i2c" in line for line in lines)


def test_a_wired_board_reads_its_gpio_keys_and_drives_its_leds(tmp_path: Path) -> None:
    """Each gpio-key instance is its own device (phys gpio-keys/input0) found by
    the key it reports; a USB keyboard with the same key is left alone."""
    fake_sysfs(tmp_path, ["simplephone:green:contact-1", "simplephone:red:contact-1"])
    bench = InputBench()
    keyboard = bench.plug("/dev/input/event0", "USB Keyboard", keys=(ecodes.KEY_F1,))
    contact = bench.plug(
        "/dev/input/event1", "button@4", phys=GPIO_KEYS_PHYS, keys=(ecodes.KEY_F1,)
    )
    end = bench.plug(
        "/dev/input/event2", "button@1a", phys=GPIO_KEYS_PHYS, keys=(ecodes.KEY_HANGUP_PHONE,)
    )
    board = RpiBoard(
        2,
        {
            "leds_root": str(tmp_path),
            "wiring": wiring(
                **{"contact-1": {"key": 4, "green": 17, "red": 27}, "end": {"key": 26}}
            ),
        },
        open_input=bench.open,
        list_inputs=bench.paths,
        open_bus=lambda display: noop(),
    )
    events: list[ButtonEvent] = []
    lit: dict[str, str] = {}
    dark: dict[str, str] = {}

    async def scenario() -> None:
        await board.start(events.append)
        async with asyncio.timeout(5):
            while not (contact.grabbed and end.grabbed):
                await asyncio.sleep(0.005)
        contact.key(ecodes.KEY_F1, 1)
        end.key(ecodes.KEY_HANGUP_PHONE, 1)
        async with asyncio.timeout(5):
            while len(events) < 2:
                await asyncio.sleep(0.005)
        board.set_led("contact-1", Led(LedColor.RED, LedPattern.STEADY))
        lit.update(state(tmp_path, "simplephone:red:contact-1"))
        dark.update(state(tmp_path, "simplephone:green:contact-1"))
        await board.close()

    asyncio.run(scenario())
    assert sorted((e.button, e.down) for e in events) == [("contact-1", True), ("end", True)]
    assert not keyboard.grabbed
    assert (lit["brightness"], dark["brightness"]) == ("1", "0")
