"""The 128x64 screen as text: a status line, a body, and a footer.

The core decides what to say (`status`, `body`, `footer`); short messages
(a contact's label on a long press, "404 Not Found") overlay the body for a
few seconds. An image (a received photo) may cover the whole panel until a
button is pressed; `lines()` then says `(image)` in the body. `lines()` is
exactly what is drawn otherwise, so the control interface and the panel
never disagree. Drawing goes through `luma.core.render.canvas`, the
same on every board.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from luma.core.render import canvas
from PIL import Image, ImageDraw, ImageFont, ImageOps

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
IMAGE_LINE = "(image)"


def panel_image(image: Image.Image) -> Image.Image:
    """`image` scaled to fit 128x64, centred, and Floyd-Steinberg dithered to 1 bit."""
    fitted = ImageOps.contain(image.convert("L"), (SCREEN_WIDTH, SCREEN_HEIGHT))
    panel = Image.new("L", (SCREEN_WIDTH, SCREEN_HEIGHT), 0)
    panel.paste(fitted, ((SCREEN_WIDTH - fitted.width) // 2, (SCREEN_HEIGHT - fitted.height) // 2))
    return panel.convert("1", dither=Image.Dither.FLOYDSTEINBERG)


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
        # A plugin's view that stands in for the body while set (the conference
        # roster); messages still overlay it.
        self.panel: list[str] | None = None
        self._message_until = 0.0
        self._image: Image.Image | None = None
        self._image_until: float | None = None  # None: until a button press
        self._drawn: list[str] | None = None

    def message(self, lines: Sequence[str], seconds: float = 3.0) -> None:
        """Overlay the body with `lines` for `seconds`."""
        self._message = list(lines)
        self._message_until = self.clock() + seconds
        self.render()

    def image(self, image: Image.Image, seconds: float | None = None) -> None:
        """Cover the panel with `image` (see `panel_image`) until `dismiss_image`,
        or for `seconds`."""
        self._image = panel_image(image)
        self._image_until = None if seconds is None else self.clock() + seconds
        self._drawn = None
        self.render()

    def dismiss_image(self) -> bool:
        """Take the image away; whether one was showing."""
        showing = self.image_showing
        self._image = None
        self._drawn = None
        return showing

    @property
    def image_showing(self) -> bool:
        if self._image is None:
            return False
        return self._image_until is None or self.clock() < self._image_until

    @property
    def message_showing(self) -> bool:
        return bool(self._message) and self.clock() < self._message_until

    def lines(self) -> list[str]:
        if self.image_showing:
            body = [IMAGE_LINE]
        else:
            body = self._message if self.message_showing else self.body
            if body is self.body and self.panel is not None:
                body = self.panel
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
        if self._image is not None and self.image_showing:
            draw.bitmap((0, 0), self._image, fill="white")
            return
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
