"""The emulator as a child process on an Xvfb display, and what its window shows
read back from pixels: LED colours and the 128x64 display's bitmap."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from board.emulator import LED_DARK, LED_RGB, PIXEL_OFF, PIXEL_ON, TITLE, Layout
from phone.board import SCREEN_HEIGHT, SCREEN_WIDTH, contact_index
from phone.remote import RemotePhone
from phone.screen import SCREENSHOT_SCALE
from tests.emulator.x11 import Window, Xvfb


class EmulatorPhone(RemotePhone):
    """`phone emulator ARGS --control unix:...` (or another `phone` command) on
    `x`'s display."""

    def __init__(
        self, x: Xvfb, workdir: Path, args: list[str], buttons: int, command: str = "emulator"
    ) -> None:
        super().__init__("alice", workdir / "alice.toml", workdir, log_level="DEBUG")
        self.args = [command, *args]
        self.buttons = buttons
        self.env = {"DISPLAY": x.display}
        self.x = x
        self.window: Window | None = None

    def command(self) -> list[str]:
        return [*self.args, "--control", f"unix:{self.socket}"]

    def start(self, timeout: float = 30.0) -> EmulatorPhone:
        super().start(timeout)
        self.window = Window(self.x, TITLE)
        return self

    @property
    def layout(self) -> Layout:
        assert self.window is not None
        return Layout.fit(self.window.size(), self.buttons)

    def click(self, button: str, hold_ms: int = 0) -> None:
        """A real pointer click in the middle of `button` on the window."""
        assert self.window is not None
        layout = self.layout
        index = contact_index(button)
        box = layout.contacts[index] if index is not None else layout.functions[button]
        self.window.click(box.center, hold_ms)

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self.stop()  # closes the client and the log
        return code


def nearest(colour: tuple[int, int, int], palette: dict[str, tuple[int, int, int]]) -> str:
    return min(
        palette,
        key=lambda name: sum((a - b) ** 2 for a, b in zip(colour, palette[name], strict=True)),
    )


LED_PALETTE = {"off": LED_DARK, **{c.value: rgb for c, rgb in LED_RGB.items()}}


def led_colours(image: Image.Image, layout: Layout) -> dict[str, str]:
    """What colour each contact LED shows in a screenshot ("off" when dark)."""
    rgb = image.convert("RGB")
    return {
        f"contact-{i + 1}": nearest(rgb.getpixel(centre), LED_PALETTE)  # type: ignore[arg-type]
        for i, centre in enumerate(layout.leds)
    }


def window_bitmap(image: Image.Image, layout: Layout) -> bytes:
    """The 128x64 display as the window shows it: the middle of each scaled pixel."""
    rgb = image.convert("RGB")
    box = layout.screen
    palette = {"on": PIXEL_ON, "off": PIXEL_OFF}
    return bytes(
        nearest(
            rgb.getpixel(  # type: ignore[arg-type]
                (
                    box.x + int((x + 0.5) * box.w / SCREEN_WIDTH),
                    box.y + int((y + 0.5) * box.h / SCREEN_HEIGHT),
                )
            ),
            palette,
        )
        == "on"
        for y in range(SCREEN_HEIGHT)
        for x in range(SCREEN_WIDTH)
    )


def control_bitmap(phone: EmulatorPhone) -> bytes:
    """The display as the control interface's `screenshot` draws it."""
    answer = phone.request(cmd="screenshot")
    assert answer["ok"] is True, answer
    image = Image.open(io.BytesIO(base64.b64decode(answer["png"]))).convert("L")
    half = SCREENSHOT_SCALE // 2
    return bytes(
        image.getpixel((x * SCREENSHOT_SCALE + half, y * SCREENSHOT_SCALE + half)) > 127  # type: ignore[operator]
        for y in range(SCREEN_HEIGHT)
        for x in range(SCREEN_WIDTH)
    )


def leds_from_state(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {button: b["led"] for button, b in state["buttons"].items()}
