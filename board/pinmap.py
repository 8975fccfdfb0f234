"""The Pi's pin map: which GPIO each button's key and LED colours are wired to.

A maker writes the wiring once, in `[board.rpi.wiring]`; the firmware and
the wiring diagram are both derived from it, so they cannot disagree. Each
key and LED colour is a line of the header's GPIO chip (`board.gpio`): keys
active low with the internal pull-up (the button connects the GPIO to
ground), LEDs driven high to light. The display's bus (`[board.rpi.display]
bus`) says which pins the kernel's I2C or SPI driver takes.

The SD image's kernel (Debian's, on mainline device trees) cannot load the
firmware's device-tree overlays, so an I2S sound card cannot work there:
`sound` is "usb", and anything else is refused with that reason.

Settings::

    [board.rpi.wiring]
    sound = "usb"             # a USB sound card: the only kind the image's kernel can take

    [board.rpi.wiring.buttons]  # button = { key = GPIO, green = GPIO, red = GPIO } (BCM numbers)
    contact-1 = { key = 4, green = 17, red = 27 }
    end = { key = 26 }

Pins are BCM GPIO numbers on the 40-pin header (GPIO0 to GPIO27). GPIO0/1
(the HAT ID EEPROM) are never used, and the display's pins are its own:
GPIO2/3 on I2C; GPIO7-11 and the panel's DC and reset pins on SPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
USB_SOUND = "usb"
LED_COLOURS = ("green", "red")

# The pin map shipped with the image, drawn in image/hardware/ and tabled in
# image/HARDWARE.md: four contact buttons with red/green LEDs and `end`, on
# pins that leave I2C (the display), SPI, I2S and the UART free.
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
    """One GPIO and what it does, for the board and the diagram."""

    gpio: int
    button: str
    role: str  # "key" or an LED colour

    @property
    def key(self) -> str:
        return f"{WIRING_SECTION}.buttons.{self.button}.{self.role}"


def wired_pins(wiring: dict[str, Any]) -> list[WiredPin]:
    """Every wired pin of a checked pin map, in button order, key first."""
    return [
        WiredPin(pins[role], button, role)
        for button, pins in wiring["buttons"].items()
        for role in ("key", *LED_COLOURS)
        if role in pins
    ]


def reserved_pins(display: dict[str, Any]) -> dict[int, str]:
    """GPIO -> what takes it, for this display bus."""
    reserved = dict.fromkeys(ID_EEPROM_PINS, "the HAT ID EEPROM")
    if display["bus"] == "i2c":
        reserved.update(dict.fromkeys(I2C_PINS, "I2C (the display)"))
    else:
        reserved.update(dict.fromkeys(SPI_PINS, "SPI (the display)"))
        reserved[display["dc_pin"]] = "the display's DC line (board.rpi.display.dc_pin)"
        reserved[display["reset_pin"]] = "the display's reset line (board.rpi.display.reset_pin)"
    return reserved


def validate_wiring(section: Table, display: dict[str, Any]) -> dict[str, Any] | None:
    """Check `[board.rpi.wiring]` against the header and the buses; None when absent.

    Each error names the key and the pin: a pin used twice, one off the
    header, one a bus takes.
    """
    if not section.data:
        return None
    sound = section.text("sound", USB_SOUND).lower()
    if sound != USB_SOUND:
        raise ConfigError(
            section.key("sound"),
            f"{describe_value(sound)}: an I2S sound card needs a device-tree overlay, which the"
            " SD image's kernel (Debian's, mainline device trees) cannot load; use a USB sound"
            ' card (sound = "usb")',
        )
    buttons_table = section.table("buttons", required=True)
    section.finish()
    reserved = reserved_pins(display)
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
