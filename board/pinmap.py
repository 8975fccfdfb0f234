"""The Pi's pin map: which GPIO each button's key and LED colours are wired to.

A maker writes the wiring once, in `[board.rpi.wiring]`; everything else is
derived from it, so the firmware, `config.txt` and the wiring diagram cannot
disagree:

- each key becomes a `gpio-key` overlay instance (active low, internal
  pull-up: the button connects the GPIO to ground) reporting a key code of its
  own (`KEYCODES`), which the board reads from that gpio-keys input device;
- each LED colour becomes a `gpio-led` overlay instance whose label is its
  kernel LED class name (`simplephone:green:contact-1`), which the board
  drives under /sys/class/leds;
- the display's bus (`[board.rpi.display] bus`) and `sound` say which pins
  the kernel's I2C, SPI and I2S drivers take, and which overlays to load.

Settings::

    [board.rpi.wiring]
    sound = "usb"             # or an I2S card's overlay: "hifiberry-dac", "googlevoicehat-soundcard", ...

    [board.rpi.wiring.buttons]  # button = { key = GPIO, green = GPIO, red = GPIO } (BCM numbers)
    contact-1 = { key = 4, green = 17, red = 27 }
    end = { key = 26 }

Pins are BCM GPIO numbers on the 40-pin header (GPIO0 to GPIO27). GPIO0/1
(the HAT ID EEPROM) are never used; GPIO2/3 belong to I2C when the display is
on I2C, GPIO7-11 and the panel's DC and reset pins to SPI when it is on SPI,
and GPIO18-21 to I2S when the sound card is an I2S one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from evdev import ecodes

from phone.board import FUNCTION_BUTTONS, contact_index
from phone.settings import ConfigError, Table, describe_value

WIRING_SECTION = "board.rpi.wiring"
HEADER_GPIOS = range(0, 28)  # the GPIOs on the 40-pin header
# GPIO (BCM) -> physical pin of the 40-pin header.
HEADER_PINS = {
    0: 27, 1: 28, 2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23,
    12: 32, 13: 33, 14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40,
    22: 15, 23: 16, 24: 18, 25: 22, 26: 37, 27: 13,
}  # fmt: skip
ID_EEPROM_PINS = (0, 1)
I2C_PINS = (2, 3)  # I2C1 SDA, SCL
SPI_PINS = (7, 8, 9, 10, 11)  # SPI0 CE1, CE0, MISO, MOSI, SCLK
I2S_PINS = (18, 19, 20, 21)  # PCM CLK, FS, DIN, DOUT
USB_SOUND = "usb"
LED_COLOURS = ("green", "red")
# The key code each button's gpio-key reports: contact-N is F<N>, the others
# say what they do where Linux has a code for it.
FUNCTION_KEYCODES = {
    "answer": "KEY_PICKUP_PHONE",
    "end": "KEY_HANGUP_PHONE",
    "page": "KEY_PAGEDOWN",
    "volume_up": "KEY_VOLUMEUP",
    "volume_down": "KEY_VOLUMEDOWN",
    "mute": "KEY_MICMUTE",
    "dnd": "KEY_PROG1",
    "conference": "KEY_PROG2",
}
MAX_CONTACT_KEYS = 24  # KEY_F1 .. KEY_F24
GPIO_KEYS_PHYS = "gpio-keys/input0"  # what the gpio-keys driver names every device it makes
GPIO_KEYS_INPUT = "gpio-keys:"  # an `inputs` entry: the gpio-keys device reporting that key
_OVERLAY_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")

# The pin map shipped with the image, drawn in image/hardware/ and tabled in
# image/HARDWARE.md: four contact buttons with red/green LEDs and `end`, on
# pins that leave I2C (the display), I2S (a sound HAT), SPI and the UART free.
DEFAULT_WIRING: dict[str, Any] = {
    "sound": USB_SOUND,
    "buttons": {
        "contact-1": {"key": 4, "green": 17, "red": 27},
        "contact-2": {"key": 22, "green": 23, "red": 24},
        "contact-3": {"key": 25, "green": 5, "red": 6},
        "contact-4": {"key": 12, "green": 13, "red": 16},
        "end": {"key": 26},
    },
}


@dataclass(frozen=True)
class WiredPin:
    """One GPIO and what it does, for config.txt and the diagram."""

    gpio: int
    button: str
    role: str  # "key" or an LED colour

    @property
    def key(self) -> str:
        return f"{WIRING_SECTION}.buttons.{self.button}.{self.role}"


def keycode_name(button: str) -> str:
    """The evdev key name the button's gpio-key reports."""
    index = contact_index(button)
    return FUNCTION_KEYCODES[button] if index is None else f"KEY_F{index + 1}"


def led_label(button: str, colour: str) -> str:
    """The kernel LED class name of one colour of a button's LED (devicename:colour:function)."""
    return f"simplephone:{colour}:{button}"


def wired_pins(wiring: dict[str, Any]) -> list[WiredPin]:
    """Every wired pin of a checked pin map, in button order, key first."""
    return [
        WiredPin(pins[role], button, role)
        for button, pins in wiring["buttons"].items()
        for role in ("key", *LED_COLOURS)
        if role in pins
    ]


def derived_keys(wiring: dict[str, Any] | None) -> dict[str, str]:
    """evdev key name -> button, as `[board.rpi.keys]` would say it."""
    if wiring is None:
        return {}
    return {keycode_name(p.button): p.button for p in wired_pins(wiring) if p.role == "key"}


def derived_inputs(wiring: dict[str, Any] | None) -> list[str]:
    """One `inputs` entry per key: each gpio-key overlay instance is an input device."""
    return [f"{GPIO_KEYS_INPUT}{key}" for key in derived_keys(wiring)]


def derived_leds(wiring: dict[str, Any] | None) -> dict[str, dict[str, str]]:
    """button -> colour -> kernel LED name, as `[board.rpi.leds]` would say it."""
    leds: dict[str, dict[str, str]] = {}
    for pin in wired_pins(wiring) if wiring is not None else ():
        if pin.role != "key":
            leds.setdefault(pin.button, {})[pin.role] = led_label(pin.button, pin.role)
    return leds


def reserved_pins(display: dict[str, Any], sound: str) -> dict[int, str]:
    """GPIO -> what takes it, for this display bus and sound card."""
    reserved = dict.fromkeys(ID_EEPROM_PINS, "the HAT ID EEPROM")
    if display["bus"] == "i2c":
        reserved.update(dict.fromkeys(I2C_PINS, "I2C (the display)"))
    else:
        reserved.update(dict.fromkeys(SPI_PINS, "SPI (the display)"))
        reserved[display["dc_pin"]] = "the display's DC line (board.rpi.display.dc_pin)"
        reserved[display["reset_pin"]] = "the display's reset line (board.rpi.display.reset_pin)"
    if sound != USB_SOUND:
        reserved.update(dict.fromkeys(I2S_PINS, f"I2S (the {sound} sound card)"))
    return reserved


def validate_wiring(section: Table, display: dict[str, Any]) -> dict[str, Any] | None:
    """Check `[board.rpi.wiring]` against the header and the buses; None when absent.

    Each error names the key and the pin: a pin used twice, one off the
    header, one a bus takes.
    """
    if not section.data:
        return None
    sound = section.text("sound", USB_SOUND).lower()
    if sound != USB_SOUND and not _OVERLAY_NAME.fullmatch(sound):
        raise ConfigError(
            section.key("sound"),
            f"must be 'usb' or a device tree overlay name, got {describe_value(sound)}",
        )
    buttons_table = section.table("buttons", required=True)
    section.finish()
    reserved = reserved_pins(display, sound)
    buttons: dict[str, dict[str, int]] = {}
    used: dict[int, WiredPin] = {}
    for button in buttons_table:
        index = contact_index(button)
        if index is None and button not in FUNCTION_BUTTONS:
            raise ConfigError(
                buttons_table.key(button),
                f"no button {describe_value(button)}: "
                f"use contact-N or one of {', '.join(FUNCTION_BUTTONS)}",
            )
        if index is not None and index >= MAX_CONTACT_KEYS:
            raise ConfigError(
                buttons_table.key(button),
                f"wired contact buttons go up to contact-{MAX_CONTACT_KEYS}",
            )
        pins = buttons_table.table(button, ("key", *LED_COLOURS))
        wired: dict[str, int] = {}
        for role in ("key", *LED_COLOURS):
            gpio = pins.take(role)
            if gpio is None:
                continue
            pin = WiredPin(_header_gpio(pins, role), button, role)
            if pin.gpio in reserved:
                raise ConfigError(pin.key, f"GPIO{pin.gpio} is taken by {reserved[pin.gpio]}")
            if pin.gpio in used:
                raise ConfigError(pin.key, f"GPIO{pin.gpio} is already {used[pin.gpio].key}")
            used[pin.gpio] = pin
            wired[role] = pin.gpio
        if "key" not in wired and index is None:
            raise pins.missing("key", "a function button needs its key's GPIO")
        colours = [colour for colour in LED_COLOURS if colour in wired]
        if colours and index is None:
            raise ConfigError(pins.key(colours[0]), "LEDs sit on contact buttons (contact-N) only")
        if not wired:
            raise ConfigError(buttons_table.key(button), "wires nothing: give key, green or red")
        buttons[button] = wired
    return {"sound": sound, "buttons": buttons}


def _header_gpio(pins: Table, role: str) -> int:
    gpio = pins.take(role)
    if type(gpio) is not int or gpio not in HEADER_GPIOS:
        raise ConfigError(
            pins.key(role),
            f"must be a GPIO on the 40-pin header (0 to {HEADER_GPIOS[-1]}), got {describe_value(gpio)}",
        )
    return gpio


BEGIN_MARKER = "# >>> simplephone board (written by `phone board-config`) >>>"
END_MARKER = "# <<< simplephone board <<<"


def config_txt(wiring: dict[str, Any], display: dict[str, Any]) -> list[str]:
    """The lines for the Pi's config.txt, between marker lines: a tool replaces
    what lies between them, so writing them again changes nothing."""
    lines = [BEGIN_MARKER, "[all]"]
    if display["bus"] == "i2c":
        # 400 kHz (I2C fast mode, which both panels take) redraws the OLED in ~25 ms.
        lines += ["dtparam=i2c_arm=on", "dtparam=i2c_arm_baudrate=400000"]
    else:
        lines.append("dtparam=spi=on")
    # The on-board audio off, so the phone's card is ALSA's card 0 ("default").
    lines.append("dtparam=audio=off")
    if wiring["sound"] != USB_SOUND:
        lines.append(f"dtoverlay={wiring['sound']}")
    for pin in wired_pins(wiring):
        if pin.role == "key":
            code = ecodes.ecodes[keycode_name(pin.button)]
            # The overlay's defaults are what the wiring needs: active low, pull-up.
            lines.append(f"dtoverlay=gpio-key,gpio={pin.gpio},keycode={code},label={pin.button}")
        else:
            lines.append(
                f"dtoverlay=gpio-led,gpio={pin.gpio},label={led_label(pin.button, pin.role)}"
            )
    lines.append(END_MARKER)
    return lines
