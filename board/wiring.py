"""The wiring diagram of a pin map, drawn from the same data the firmware reads.

`phone wiring --out wiring.png` draws the 40-pin header with what each pin
is wired to, and how a button, a LED and the display are connected. The
picture in image/hardware/ is drawn by this from `DEFAULT_WIRING`, and a test
draws it again and compares, so the diagram never disagrees with the firmware.

PIL's built-in bitmap font keeps the drawing identical on every machine
(a TrueType font would follow the FreeType version); it is drawn small and
scaled up without smoothing.
"""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw, ImageFont

from board.pinmap import HEADER_PINS, I2C_PINS, SPI_PINS, wired_pins

SCALE = 2
ROW = 13  # pixels per header row, before scaling
TOP = 40
PIN_X = (200, 214)  # centres of the odd (left) and even (right) column
WIDTH, HEIGHT = 520, TOP + 20 * ROW + 112
POWER = {1: "3V3", 17: "3V3", 2: "5V", 4: "5V"}
GROUND = (6, 9, 14, 20, 25, 30, 34, 39)
COLOURS = {
    "key": (40, 90, 200),
    "green": (20, 150, 40),
    "red": (200, 30, 30),
    "bus": (150, 110, 0),
    "power": (230, 120, 0),
    "ground": (0, 0, 0),
    "free": (170, 170, 170),
}
I2C_NAMES = {2: "SDA", 3: "SCL"}
SPI_NAMES = {7: "CE1", 8: "CE0", 9: "MISO", 10: "MOSI", 11: "SCLK"}


def pin_uses(wiring: dict[str, Any], display: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Physical pin -> (label, colour name) for every pin that is not free."""
    uses: dict[int, tuple[str, str]] = {pin: (name, "power") for pin, name in POWER.items()}
    uses.update({pin: ("GND", "ground") for pin in GROUND})
    if display["bus"] == "i2c":
        for gpio in I2C_PINS:
            uses[HEADER_PINS[gpio]] = (f"GPIO{gpio} OLED {I2C_NAMES[gpio]}", "bus")
    else:
        for gpio in SPI_PINS:
            uses[HEADER_PINS[gpio]] = (f"GPIO{gpio} OLED {SPI_NAMES[gpio]}", "bus")
        uses[HEADER_PINS[display["dc_pin"]]] = (f"GPIO{display['dc_pin']} OLED DC", "bus")
        uses[HEADER_PINS[display["reset_pin"]]] = (f"GPIO{display['reset_pin']} OLED RST", "bus")
    for pin in wired_pins(wiring):
        what = "key" if pin.role == "key" else f"LED {pin.role}"
        uses[HEADER_PINS[pin.gpio]] = (f"GPIO{pin.gpio} {pin.button} {what}", pin.role)
    return uses


def draw_wiring(wiring: dict[str, Any], display: dict[str, Any]) -> Image.Image:
    """The diagram of a checked pin map (`validate_wiring`) and display settings."""
    font = ImageFont.load_default_imagefont()
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    title = (
        f"simplephone: Raspberry Pi 40-pin header, {display['driver']} on {display['bus']},"
        " USB sound card"
    )
    draw.text((8, 8), title, fill=(0, 0, 0), font=font)
    draw.text(
        (8, 22),
        "(BCM GPIO numbers; pin 1 is the corner by the SD card slot)",
        fill=(90, 90, 90),
        font=font,
    )
    draw.rectangle((PIN_X[0] - 9, TOP - 4, PIN_X[1] + 9, TOP + 20 * ROW), outline=(0, 0, 0))
    uses = pin_uses(wiring, display)
    for pin in range(1, 41):
        row, right = (pin - 1) // 2, pin % 2 == 0
        x, y = PIN_X[right], TOP + row * ROW + 4
        label, colour = uses.get(pin, ("", "free"))
        fill = COLOURS[colour]
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=fill if label else None, outline=fill)
        number = str(pin)
        width = font.getbbox(number)[2]
        number_x = x + 16 if right else x - 16 - width
        draw.text((number_x, y - 5), number, fill=(90, 90, 90), font=font)
        if label:
            label_x = x + 34 if right else x - 34 - font.getbbox(label)[2]
            draw.text((label_x, y - 5), label, fill=fill, font=font)
    legend_y = TOP + 20 * ROW + 12
    legend = [
        ("key", "button: GPIO -- push button -- GND (the line's internal pull-up, active low)"),
        ("green", "LED: GPIO -- 330 R -- LED anode, LED cathode -- GND (about 4 mA at 3.3 V)"),
        ("red", "bi-colour LED: two GPIOs, one resistor each, common cathode to GND"),
        ("bus", "OLED: VCC to 3V3 (pin 1), GND, and the bus pins above"),
        ("power", "power: 5V from the Pi's supply; no GPIO takes more than 16 mA"),
    ]
    for index, (colour, text) in enumerate(legend):
        y = legend_y + index * 18
        draw.rectangle((8, y + 1, 16, y + 9), fill=COLOURS[colour])
        draw.text((24, y), text, fill=(0, 0, 0), font=font)
    return image.resize((WIDTH * SCALE, HEIGHT * SCALE), Image.Resampling.NEAREST)
