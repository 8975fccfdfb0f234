"""`[board.rpi]` validation: every problem names its full key."""

from __future__ import annotations

from typing import Any

import pytest

from board.rpi import RpiBoard
from phone.config import ConfigError

KEYS = {"KEY_F1": "contact-1", "KEY_ENTER": "answer"}


def test_defaults_fill_an_empty_section() -> None:
    settings = RpiBoard.validate_settings({})
    assert settings == {
        "inputs": [],
        "keys": {},
        "leds_root": "/sys/class/leds",
        "leds": {},
        "display": {
            "driver": "ssd1306",
            "bus": "i2c",
            "port": 1,
            "address": 0x3C,
            "device": 0,
            "dc_pin": 24,
            "reset_pin": 25,
            "rotate": 0,
            "contrast": None,
        },
        "wiring": None,
        "capture_pcm": "default",
        "playback_pcm": "default",
        "mixer": "Master",
        "mixer_device": "default",
    }
    assert RpiBoard.validate_settings(settings) == settings  # normalising twice changes nothing


def test_a_full_section_is_kept() -> None:
    section = {
        "inputs": ["/dev/input/event0", "USB Keypad"],
        "keys": {"KEY_F1": "contact-1", "BTN_0": "dnd"},
        "leds": {"contact-1": {"green": "sp:green:1", "red": 27}},
        "display": {"driver": "SH1106", "bus": "spi", "rotate": 180, "contrast": 40},
        "mixer": "PCM",
    }
    settings = RpiBoard.validate_settings(section)
    assert settings["inputs"] == ["/dev/input/event0", "USB Keypad"]
    assert settings["keys"] == {"KEY_F1": "contact-1", "BTN_0": "dnd"}
    assert settings["leds"] == {"contact-1": {"green": "sp:green:1", "red": 27}}
    assert settings["display"]["driver"] == "sh1106"
    assert settings["display"]["port"] == 0  # SPI bus 0 by default
    assert (settings["display"]["rotate"], settings["display"]["contrast"]) == (180, 40)
    assert settings["mixer"] == "PCM"


@pytest.mark.parametrize(
    ("section", "key", "message"),
    [
        (
            {"inputs": ["/dev/input/event0"], "keys": {"KEY_NOPE": "answer"}},
            "board.rpi.keys.KEY_NOPE",
            "not an evdev key name",
        ),
        (
            {"inputs": ["/dev/input/event0"], "keys": {"ABS_X": "answer"}},
            "board.rpi.keys.ABS_X",
            "not an evdev key name",
        ),
        (
            {"inputs": ["/dev/input/event0"], "keys": {"KEY_F1": "hangup"}},
            "board.rpi.keys.KEY_F1",
            "no button 'hangup'",
        ),
        (
            {"inputs": ["/dev/input/event0"], "keys": {"KEY_F1": 1}},
            "board.rpi.keys.KEY_F1",
            "must be a string, got 1",
        ),
        (
            {"inputs": ["k"], "keys": {"KEY_COFFEE": "end", "KEY_SCREENLOCK": "dnd"}},
            "board.rpi.keys.KEY_SCREENLOCK",
            "is the same key code (152) as KEY_COFFEE",
        ),
        ({"keys": KEYS}, "board.rpi.inputs", "no input device"),
        ({"inputs": ["USB Keypad"]}, "board.rpi.keys", "no key mapped"),
        ({"inputs": "USB Keypad", "keys": KEYS}, "board.rpi.inputs", "must be an array"),
        ({"inputs": [""], "keys": KEYS}, "board.rpi.inputs[0]", "non-empty string"),
        ({"input": ["x"]}, "board.rpi.input", "unknown key (did you mean 'inputs'?)"),
        ({"input": ["x"], "keys": KEYS}, "board.rpi.input", "unknown key (did you mean 'inputs'?)"),
        ({"display": {"drivr": "sh1106"}}, "board.rpi.display.drivr", "did you mean 'driver'?"),
        ({"leds": {"answer": {"green": "x"}}}, "board.rpi.leds.answer", "contact-N"),
        ({"leds": {"contact-1": {}}}, "board.rpi.leds.contact-1", "needs a green or red"),
        (
            {"leds": {"contact-1": {"blue": "x"}}},
            "board.rpi.leds.contact-1.blue",
            "unknown key (keys: green, red)",
        ),
        (
            {"leds": {"contact-1": {"green": "../../gpio"}}},
            "board.rpi.leds.contact-1.green",
            "not a kernel LED name",
        ),
        ({"leds": {"contact-1": "sp:green:1"}}, "board.rpi.leds.contact-1", "must be a table"),
        (
            {"leds": {"contact-1": {"green": 54}}},
            "board.rpi.leds.contact-1.green",
            "from 0 to 53, got 54",
        ),
        (
            {"leds": {"contact-1": {"red": True}}},
            "board.rpi.leds.contact-1.red",
            "must be a kernel LED name or a GPIO number, got true",
        ),
        (
            {"display": {"driver": "ssd1309"}},
            "board.rpi.display.driver",
            "must be one of ssd1306, sh1106, got 'ssd1309'",
        ),
        ({"display": {"bus": "usb"}}, "board.rpi.display.bus", "must be one of i2c, spi"),
        ({"display": {"rotate": 90}}, "board.rpi.display.rotate", "64x128"),
        ({"display": {"address": 0x78}}, "board.rpi.display.address", "from 3 to 119, got 120"),
        ({"display": {"contrast": 256}}, "board.rpi.display.contrast", "from 0 to 255"),
        ({"display": {"port": "1"}}, "board.rpi.display.port", "got '1'"),
        ({"display": {"port": True}}, "board.rpi.display.port", "got true"),
        ({"mixer": ""}, "board.rpi.mixer", "must not be empty"),
    ],
)
def test_bad_settings_name_the_key(section: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RpiBoard.validate_settings(section)
    assert caught.value.key == key
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{key}: ")


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"inputs": ["k"], "keys": {"KEY_F9": "contact-5"}}, "board.rpi.keys.KEY_F9"),
        ({"leds": {"contact-7": {"red": "sp:red:7"}}}, "board.rpi.leds.contact-7"),
    ],
)
def test_buttons_beyond_the_board_are_refused(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RpiBoard(4, section)
    assert caught.value.key == key
    assert "beyond the board's 4 contact buttons" in str(caught.value)


def test_audio_comes_from_settings() -> None:
    board = RpiBoard(2, {"capture_pcm": "hw:1,0", "playback_pcm": "dmix:1", "mixer": "Speaker"})
    audio = board.audio
    assert (audio.capture_pcm, audio.playback_pcm, audio.mixer) == ("hw:1,0", "dmix:1", "Speaker")
    assert audio.mic_wav is None and audio.speaker_wav is None
