"""The 128x64 screen as text: a status line, a body, and a footer.

The core decides what to say (`status`, `body`, `footer`); short messages
(a contact's label on a long press, "404 Not Found") overlay the body for a
few seconds. `lines()` is exactly what is drawn, so the control interface and
the panel never disagree. Drawing goes through `luma.core.render.canvas`, the
same on every board.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from luma.core.render import canvas
from PIL import Image, ImageDraw, ImageFont

from phone.board import SCREEN_HEIGHT, SCREEN_WIDTH

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
)
FONT_SIZE = 10
LINE_HEIGHT = 12
ROWS = SCREEN_HEIGHT // LINE_HEIGHT  # 5
COLUMNS = 21
SCREENSHOT_SCALE = 4  # each pixel a 4x4 block, so a person can read it


def _font() -> Any:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, FONT_SIZE)
    return ImageFont.load_default()


class Screen:
    def __init__(self, device: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.device = device
        self.clock = clock
        self.font = _font()
        self.status = ""
        self.body: list[str] = []
        self.footer = ""
        # Short footer flags that plugins set by name (e.g. "presence": "W2" for two
        # watchers waiting); the core draws them after its own, in insertion order.
        self.indicators: dict[str, str] = {}
        self._message: list[str] = []
        self._message_until = 0.0
        self._drawn: list[str] | None = None

    def message(self, lines: Sequence[str], seconds: float = 3.0) -> None:
        """Overlay the body with `lines` for `seconds`."""
        self._message = list(lines)
        self._message_until = self.clock() + seconds
        self.render()

    @property
    def message_showing(self) -> bool:
        return bool(self._message) and self.clock() < self._message_until

    def lines(self) -> list[str]:
        body = self._message if self.message_showing else self.body
        rows = [self.status, *body[: ROWS - 2]]
        rows += [""] * (ROWS - 1 - len(rows))
        rows.append(self.footer)
        return [row[:COLUMNS] for row in rows]

    def render(self) -> None:
        """Draw if the text changed (the panel is slow on i2c; the dummy is not)."""
        rows = self.lines()
        if rows == self._drawn:
            return
        self._drawn = rows
        with canvas(self.device) as draw:
            self._draw(draw, rows)

    def _draw(self, draw: ImageDraw.ImageDraw, rows: list[str]) -> None:
        for i, row in enumerate(rows):
            draw.text((0, i * LINE_HEIGHT), row, fill="white", font=self.font)
        draw.line((0, LINE_HEIGHT - 1, SCREEN_WIDTH, LINE_HEIGHT - 1), fill="white")

    def screenshot(self, path: str | BinaryIO) -> None:
        """Write what the panel shows as a 1-bit PNG, on any board (a real panel
        cannot be read back, so the same text is drawn again)."""
        image = Image.new("1", (SCREEN_WIDTH, SCREEN_HEIGHT), 0)
        self._draw(ImageDraw.Draw(image), self.lines())
        size = (SCREEN_WIDTH * SCREENSHOT_SCALE, SCREEN_HEIGHT * SCREENSHOT_SCALE)
        image.resize(size, Image.Resampling.NEAREST).save(path, format="PNG")
