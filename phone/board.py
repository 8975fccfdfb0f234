"""The board seam: everything the core needs from the hardware, and nothing more.

The core drives one `Board`; `board/` holds the implementations (a Raspberry Pi,
an in-memory virtual board, a desktop window), found by kind in
`phone.board_kinds` and imported only when chosen, so `phone/` never imports a
concrete board. This follows luma.core's layering: the panel (a luma device) is handed to
the core, which draws on it with `luma.core.render.canvas`, whatever the panel.

Inputs are raw button edges (down/up). Telling a short press from a long press
is the core's job (`phone.buttons`), so every board behaves the same.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from phone.settings import Table

SCREEN_WIDTH = 128
SCREEN_HEIGHT = 64

# `conference` is for the conference plugin (`button_pressed`); the core ignores it.
FUNCTION_BUTTONS = (
    "end",
    "answer",
    "page",
    "volume_up",
    "volume_down",
    "mute",
    "dnd",
    "conference",
)


def contact_button(index: int) -> str:
    """The name of contact button `index` (0-based) as boards and the control API spell it."""
    return f"contact-{index + 1}"


def contact_index(button: str) -> int | None:
    """The 0-based index of a `contact-N` button name, or None for a function button."""
    if not button.startswith("contact-"):
        return None
    try:
        number = int(button.removeprefix("contact-"))
    except ValueError:
        return None
    return number - 1 if number >= 1 else None


class LedColor(StrEnum):
    OFF = "off"
    GREEN = "green"
    RED = "red"
    AMBER = "amber"


class LedPattern(StrEnum):
    OFF = "off"
    STEADY = "steady"
    SLOW = "slow"  # about 1 Hz: pending, waiting
    FAST = "fast"  # about 4 Hz: ringing, needs attention
    WINK = "wink"  # lit, dark for a moment every 1.5 s: something waits (unread), colour kept


# Blink timing shared by every board (on_ms, off_ms).
BLINK_MS = {
    LedPattern.SLOW: (500, 500),
    LedPattern.FAST: (125, 125),
    LedPattern.WINK: (1250, 250),
}


@dataclass(frozen=True)
class Led:
    color: LedColor = LedColor.OFF
    pattern: LedPattern = LedPattern.OFF

    def __post_init__(self) -> None:
        # One spelling of "dark": either field off means the LED is off.
        if self.color is LedColor.OFF or self.pattern is LedPattern.OFF:
            object.__setattr__(self, "color", LedColor.OFF)
            object.__setattr__(self, "pattern", LedPattern.OFF)

    @property
    def lit(self) -> bool:
        return self.color is not LedColor.OFF

    def as_dict(self) -> dict[str, str]:
        return {"color": self.color.value, "pattern": self.pattern.value}


LED_OFF = Led()


@dataclass(frozen=True)
class ButtonEvent:
    """One edge of one button: `down` True when pressed, False when released."""

    button: str
    down: bool
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class AudioEndpoints:
    """Where the phone's sound goes, per board.

    A board fills what it has: WAV files (virtual board; silence or discard when
    None), or ALSA PCM and mixer names (Pi, emulator, virtual room).
    """

    mic_wav: str | None = None
    speaker_wav: str | None = None
    capture_pcm: str | None = None
    playback_pcm: str | None = None
    mixer: str | None = None  # the volume control's name, e.g. "Master" or "PCM"
    mixer_device: str = "default"  # the ALSA control device that has it


ButtonHandler = Callable[[ButtonEvent], None]


class BoardUnavailable(RuntimeError):
    """The board's front cannot be reached at start (the emulator without a
    display or without pygame); the text says what to do, for a one-line error."""


class Board(ABC):
    """One phone front: contact buttons with LEDs, function buttons, a 128x64 screen.

    Lifecycle: construct from the parsed config, `await start(handler)`, then
    the core calls `set_led` and draws on `display`; `await close()` at the end.
    The handler is called on the event loop thread, once per button edge.
    A front the person can close (the emulator's window) calls `on_close`,
    which the runner sets to stop the phone.
    """

    kind: str = "abstract"

    def __init__(self, contact_buttons: int, settings: dict[str, Any] | None = None) -> None:
        self.contact_buttons = contact_buttons
        self.settings = settings or {}
        self._handler: ButtonHandler | None = None
        self._leds: dict[str, Led] = {contact_button(i): LED_OFF for i in range(contact_buttons)}
        self._labels: dict[str, str] = dict.fromkeys(self._leds, "")
        self.on_close: Callable[[], None] | None = None

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Check this board's `[board.<kind>]` section (with `phone.settings.Table`)
        and return it normalised; a board with settings overrides this."""
        Table(f"board.{cls.kind}", settings, keys=())
        return settings

    # -- inputs ---------------------------------------------------------
    @property
    def button_names(self) -> tuple[str, ...]:
        return tuple(contact_button(i) for i in range(self.contact_buttons)) + FUNCTION_BUTTONS

    async def start(self, handler: ButtonHandler) -> None:
        """Begin delivering button edges to `handler`."""
        self._handler = handler

    async def close(self) -> None:
        """Release the hardware; LEDs go dark."""
        for name in self._leds:
            self.set_led(name, LED_OFF)
        self._handler = None

    def inject(self, event: ButtonEvent) -> None:
        """Deliver a button edge as if the hardware had produced it.

        Used by the control interface (tests, scripts, the emulator's mouse).
        Raises ValueError for a button this board does not have.
        """
        if event.button not in self.button_names:
            raise ValueError(f"unknown button: {event.button!r}")
        if self._handler is not None:
            self._handler(event)

    # -- outputs --------------------------------------------------------
    def set_led(self, button: str, led: Led) -> None:
        """Show `led` on a contact button; the board makes it blink if asked."""
        if button not in self._leds:
            raise ValueError(f"no LED on button {button!r}")
        if self._leds[button] == led:
            return
        self._leds[button] = led
        self._drive_led(button, led)

    def led(self, button: str) -> Led:
        return self._leds[button]

    def set_label(self, button: str, text: str) -> None:
        """Name the contact on a button ("" for none). A board that prints labels
        (the emulator's window) shows it; a paper label needs nothing."""
        if button not in self._labels:
            raise ValueError(f"no label on button {button!r}")
        if self._labels[button] == text:
            return
        self._labels[button] = text
        self._show_label(button, text)

    def label(self, button: str) -> str:
        return self._labels[button]

    def _show_label(self, button: str, text: str) -> None:  # noqa: B027 - optional hook
        """Put a new label on the front (called only when it changes)."""

    @abstractmethod
    def _drive_led(self, button: str, led: Led) -> None:
        """Put `led` on the hardware (called only when it changes)."""

    @property
    @abstractmethod
    def display(self) -> Any:
        """A luma.core device of SCREEN_WIDTH x SCREEN_HEIGHT, mode '1'."""

    @property
    @abstractmethod
    def audio(self) -> AudioEndpoints:
        """Where the phone's microphone and speaker are on this board."""
