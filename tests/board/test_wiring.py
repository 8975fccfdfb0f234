"""The committed wiring diagram is what the default pin map draws, pixel for pixel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageChops

from board.pinmap import DEFAULT_WIRING, HEADER_PINS, LED_COLOURS
from board.rpi import RpiBoard
from board.wiring import pin_uses

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "image" / "hardware" / "wiring.png"


def test_the_committed_diagram_is_the_default_pin_map_drawn_again(tmp_path: Path) -> None:
    drawn = tmp_path / "wiring.png"
    result = subprocess.run(
        [sys.executable, "-m", "phone", "wiring", "--out", str(drawn)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with Image.open(COMMITTED) as committed, Image.open(drawn) as again:
        assert committed.size == again.size
        difference = ImageChops.difference(committed.convert("RGB"), again.convert("RGB"))
        assert difference.getbbox() is None, (
            f"{COMMITTED} differs from the default pin map: run "
            f"`.venv/bin/phone wiring --out {COMMITTED.relative_to(ROOT)}`"
        )


def test_the_diagram_follows_the_pin_map_and_the_buses() -> None:
    settings = RpiBoard.validate_settings(
        {
            "display": {"bus": "spi"},
            "wiring": {"buttons": {"contact-1": {"key": 4, "red": 5}}},
        }
    )
    uses = pin_uses(settings["wiring"], settings["display"])
    assert uses[HEADER_PINS[4]] == ("GPIO4 contact-1 key", "key")
    assert uses[HEADER_PINS[5]] == ("GPIO5 contact-1 LED red", "red")
    assert uses[HEADER_PINS[10]] == ("GPIO10 OLED MOSI", "bus")
    assert uses[HEADER_PINS[24]] == ("GPIO24 OLED DC", "bus")
    assert HEADER_PINS[21] not in uses  # no I2S: the image's kernel takes USB sound cards only
    assert HEADER_PINS[2] not in uses  # I2C is free with the display on SPI


def test_hardware_md_tables_the_default_pin_map() -> None:
    text = (ROOT / "image" / "HARDWARE.md").read_text()

    def cell(gpio: int | None) -> str:
        return " " if gpio is None else f" GPIO{gpio} (pin {HEADER_PINS[gpio]}) "

    for button, pins in DEFAULT_WIRING["buttons"].items():
        roles = ("key", *LED_COLOURS)
        row = f"| {button} |" + "|".join(cell(pins.get(role)) for role in roles) + "|"
        assert row in text, row
