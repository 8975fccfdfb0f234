"""The desktop emulator: the phone's front in a window (pygame, SDL 2).

The window shows the 128x64 display scaled up, a column of contact buttons
with their labels and LEDs, and the function buttons. A click is a press and
holding the mouse is a long press: the board only reports edges, and the core
tells short from long as on every board. Keys: `1`-`9` contacts, Enter answer,
Escape end, PgDn page, `+`/`-` volume, `m` mute, `d` DND, `c` conference.
Closing the window calls `on_close`, which stops the phone cleanly.

Threads: SDL wants its events read on the thread that opened the window, and
the phone's state lives on the asyncio loop's thread. `phone run` and
`phone emulator` run the loop on the main thread, so the board opens the
window there and a loop task pumps SDL's events: one thread, no locks, every
edge delivered on the loop thread like the other boards'. The pump runs every
20 ms while the window is in use (pointer over it, a button held or pressed in
the last few seconds) and every 100 ms otherwise. Nothing is drawn unless a LED, a label, the
display or the window changed (a blinking LED only at its edges, with
BLINK_MS's timing), so an idle window costs a fraction of a percent of a core
(bench/emulator.py).

Settings (`[board.emulator]`, all optional)::

    sound = "default"        # the ALSA PCM for microphone and speaker, or "none"
    capture_pcm = "..."      # a microphone elsewhere than `sound` (a headset, test sinks)
    playback_pcm = "..."     # a speaker elsewhere than `sound`
    mixer = "Master"         # a volume control to move; absent: the call's level
    mixer_device = "default" # the ALSA control device that has it

pygame is an optional extra (`pip install simplephone[emulator]`); without it,
or without a display, `start` raises `BoardUnavailable` with one sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from luma.core.device import dummy

from phone.board import (
    BLINK_MS,
    FUNCTION_BUTTONS,
    SCREEN_HEIGHT,
    SCREEN_WIDTH,
    AudioEndpoints,
    Board,
    BoardUnavailable,
    ButtonEvent,
    ButtonHandler,
    Led,
    LedColor,
    LedPattern,
    contact_button,
    contact_index,
)
from phone.settings import Table

log = logging.getLogger(__name__)

SECTION = "board.emulator"
TITLE = "simplephone"
HEADLESS_DRIVERS = ("offscreen", "dummy")
# SDL's events are read every PUMP_ACTIVE_S while the pointer is over the window,
# a button is held or was pressed in the last IN_USE_S (a click waits 10 ms on
# average), else every PUMP_IDLE_S: the first key after a quiet spell waits that
# long at most.
PUMP_ACTIVE_S = 0.02
PUMP_IDLE_S = 0.1
IN_USE_S = 5.0  # after a key or a click, the window stays "in use" this long

# The window's layout at scale 1, in pixels; a resized window scales all of it.
MARGIN = 16
SCREEN_SCALE = 3
GAP = 8
FUNCTION_SIZE = (90, 40)
FUNCTION_ROWS = (
    ("answer", "end", "page", "conference"),
    ("volume_down", "volume_up", "mute", "dnd"),
)
CONTACT_SIZE = (220, 40)
LED_RADIUS = 8
LED_INSET = 20  # from a contact button's left edge to its LED's centre
FONT_SIZE = 20
HINT_FONT_SIZE = 15

# What each function button says, and its key.
FUNCTION_FACES = {
    "answer": ("Answer", "Enter"),
    "end": ("End", "Esc"),
    "page": ("Page", "PgDn"),
    "conference": ("Conf", "c"),
    "volume_down": ("Vol -", "-"),
    "volume_up": ("Vol +", "+"),
    "mute": ("Mute", "m"),
    "dnd": ("DND", "d"),
}
assert sorted(FUNCTION_FACES) == sorted(FUNCTION_BUTTONS), "a function button has no face"

RGB = tuple[int, int, int]
BODY: RGB = (38, 40, 46)
BEZEL: RGB = (10, 10, 12)
FACE: RGB = (78, 82, 90)
FACE_HELD: RGB = (128, 134, 146)
TEXT: RGB = (236, 236, 236)
HINT: RGB = (165, 168, 176)
PIXEL_ON: RGB = (225, 240, 255)
PIXEL_OFF: RGB = (6, 8, 14)
LED_DARK: RGB = (52, 52, 56)
LED_RGB: dict[LedColor, RGB] = {
    LedColor.GREEN: (40, 220, 80),
    LedColor.RED: (235, 45, 45),
    LedColor.AMBER: (255, 170, 0),
}


class Box(NamedTuple):
    """A rectangle in window pixels."""

    x: int
    y: int
    w: int
    h: int

    def contains(self, pos: tuple[int, int]) -> bool:
        return self.x <= pos[0] < self.x + self.w and self.y <= pos[1] < self.y + self.h

    @property
    def center(self) -> tuple[int, int]:
        return self.x + self.w // 2, self.y + self.h // 2


def base_size(contact_buttons: int) -> tuple[int, int]:
    """The window's size at scale 1: the screen and function buttons on the
    left, the contact buttons in a column on the right."""
    left = SCREEN_WIDTH * SCREEN_SCALE
    width = MARGIN + left + 3 * GAP + CONTACT_SIZE[0] + MARGIN
    rows = len(FUNCTION_ROWS)
    left_height = (
        SCREEN_HEIGHT * SCREEN_SCALE + 2 * GAP + rows * FUNCTION_SIZE[1] + (rows - 1) * GAP
    )
    right_height = contact_buttons * CONTACT_SIZE[1] + (contact_buttons - 1) * GAP
    return width, MARGIN + max(left_height, right_height) + MARGIN


@dataclass(frozen=True)
class Layout:
    """Where everything is in a window of `size`: the base layout scaled to fit
    and centred. Tests use it to find a LED's pixel or a button to click."""

    size: tuple[int, int]
    scale: float
    screen: Box
    contacts: tuple[Box, ...]
    leds: tuple[tuple[int, int], ...]
    led_radius: int
    functions: dict[str, Box]

    @classmethod
    def fit(cls, size: tuple[int, int], contact_buttons: int) -> Layout:
        base_w, base_h = base_size(contact_buttons)
        scale = max(0.1, min(size[0] / base_w, size[1] / base_h))
        ox = (size[0] - base_w * scale) / 2
        oy = (size[1] - base_h * scale) / 2

        def box(x: float, y: float, w: float, h: float) -> Box:
            left, top = round(ox + x * scale), round(oy + y * scale)
            return Box(
                left, top, round(ox + (x + w) * scale) - left, round(oy + (y + h) * scale) - top
            )

        screen_w, screen_h = SCREEN_WIDTH * SCREEN_SCALE, SCREEN_HEIGHT * SCREEN_SCALE
        functions: dict[str, Box] = {}
        fw, fh = FUNCTION_SIZE
        fgap = (screen_w - len(FUNCTION_ROWS[0]) * fw) / (len(FUNCTION_ROWS[0]) - 1)
        for row, names in enumerate(FUNCTION_ROWS):
            y = MARGIN + screen_h + 2 * GAP + row * (fh + GAP)
            for column, name in enumerate(names):
                functions[name] = box(MARGIN + column * (fw + fgap), y, fw, fh)
        cw, ch = CONTACT_SIZE
        cx = MARGIN + screen_w + 3 * GAP
        contacts = tuple(box(cx, MARGIN + i * (ch + GAP), cw, ch) for i in range(contact_buttons))
        leds = tuple((round(ox + (cx + LED_INSET) * scale), b.center[1]) for b in contacts)
        return cls(
            size=size,
            scale=scale,
            screen=box(MARGIN, MARGIN, screen_w, screen_h),
            contacts=contacts,
            leds=leds,
            led_radius=max(2, round(LED_RADIUS * scale)),
            functions=functions,
        )

    def button_at(self, pos: tuple[int, int]) -> str | None:
        for index, contact in enumerate(self.contacts):
            if contact.contains(pos):
                return contact_button(index)
        return next((name for name, b in self.functions.items() if b.contains(pos)), None)


def led_lit(led: Led, since: float, now: float) -> bool:
    """Whether a LED set at `since` is lit at `now`: blinking starts lit, as the
    kernel's timer trigger does, with BLINK_MS's on and off times."""
    if not led.lit:
        return False
    if led.pattern is LedPattern.STEADY:
        return True
    on_ms, off_ms = BLINK_MS[led.pattern]
    return ((now - since) * 1000) % (on_ms + off_ms) < on_ms


def next_blink_edge(led: Led, since: float, now: float) -> float | None:
    """When a blinking LED next turns on or off (None for a steady or dark one)."""
    if not led.lit or led.pattern is LedPattern.STEADY:
        return None
    on_ms, off_ms = BLINK_MS[led.pattern]
    period = (on_ms + off_ms) / 1000
    phase = (now - since) % period
    edge = on_ms / 1000 if phase < on_ms / 1000 else period
    return now + (edge - phase)


class WindowDisplay(dummy):
    """luma.core's in-memory device that also says when a new frame arrived."""

    def __init__(self, on_frame: Callable[[], None]) -> None:
        super().__init__(width=SCREEN_WIDTH, height=SCREEN_HEIGHT, mode="1")
        self._on_frame = on_frame

    def display(self, image: Any) -> None:
        super().display(image)
        self._on_frame()


def _import_pygame() -> Any:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_VIDEO_X11_WMCLASS", TITLE)  # what xdotool and WMs look for
    try:
        import pygame
    except ImportError:
        raise BoardUnavailable(
            "the emulator needs pygame: pip install 'simplephone[emulator]'"
        ) from None
    return pygame


KEYS = {
    "K_RETURN": "answer",
    "K_KP_ENTER": "answer",
    "K_ESCAPE": "end",
    "K_PAGEDOWN": "page",
    "K_PLUS": "volume_up",
    "K_EQUALS": "volume_up",  # '+' is shift-'=' on many layouts
    "K_KP_PLUS": "volume_up",
    "K_MINUS": "volume_down",
    "K_KP_MINUS": "volume_down",
    "K_m": "mute",
    "K_d": "dnd",
    "K_c": "conference",
}


class EmulatorBoard(Board):
    """The phone's front in a pygame window, on the loop's (main) thread."""

    kind = "emulator"

    def __init__(self, contact_buttons: int, settings: dict[str, Any] | None = None) -> None:
        super().__init__(contact_buttons, self.validate_settings(settings or {}))
        self._display = WindowDisplay(lambda: self._invalidate("screen"))
        self._since: dict[str, float] = dict.fromkeys(self._leds, 0.0)
        self._pg: Any = None
        self._surface: Any = None
        self._layout: Layout | None = None
        self._fonts: tuple[Any, Any] | None = None
        self._keys: dict[int, str] = {}
        self._held: dict[str, str] = {}  # button -> what holds it ("mouse" or "key")
        self._pointer_over = False
        self._last_input = 0.0
        self._dirty: set[str] = set()
        self._draw_pending = False
        self._blink_timer: asyncio.TimerHandle | None = None
        self._pump_task: asyncio.Task[None] | None = None

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        section = Table(SECTION, settings)
        normalised = {
            "sound": section.text("sound", "default"),
            "mixer_device": section.text("mixer_device", "default"),
        }
        for name in ("capture_pcm", "playback_pcm", "mixer"):
            value = section.text(name)
            if value is not None:
                normalised[name] = value
        section.finish()
        return normalised

    # -- lifecycle ------------------------------------------------------
    async def start(self, handler: ButtonHandler) -> None:
        """Open the window; BoardUnavailable without pygame or a display."""
        pg = _import_pygame()
        size = base_size(self.contact_buttons)
        try:
            pg.display.init()
            # SDL falls back to drawing off screen when it finds no display; that
            # is only wanted when asked for by name (SDL_VIDEODRIVER).
            driver = pg.display.get_driver()
            if driver in HEADLESS_DRIVERS and os.environ.get("SDL_VIDEODRIVER") != driver:
                raise pg.error(f"SDL found no display, only its {driver} driver")
            pg.font.init()
            self._surface = pg.display.set_mode(size, pg.RESIZABLE)
        except pg.error as exc:
            pg.quit()
            raise BoardUnavailable(
                f"the emulator needs a display and found none ({exc}; "
                f"DISPLAY={os.environ.get('DISPLAY') or 'unset'}): "
                "run it on a desktop, or under Xvfb"
            ) from None
        self._pg = pg
        pg.display.set_caption(TITLE)
        pg.event.set_allowed(None)
        pg.event.set_allowed(
            [
                pg.QUIT,
                pg.KEYDOWN,
                pg.KEYUP,
                pg.MOUSEBUTTONDOWN,
                pg.MOUSEBUTTONUP,
                pg.WINDOWSIZECHANGED,
                pg.WINDOWEXPOSED,
                pg.WINDOWENTER,
                pg.WINDOWLEAVE,
                pg.WINDOWFOCUSLOST,
            ]
        )
        self._keys = {getattr(pg, name): button for name, button in KEYS.items()}
        for index in range(min(self.contact_buttons, 9)):
            self._keys[getattr(pg, f"K_{index + 1}")] = contact_button(index)
        self._relayout(size)
        await super().start(handler)
        self._pump_task = asyncio.get_running_loop().create_task(self._pump(), name="window")
        log.info("emulator window open (%dx%d)", *size)

    async def close(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None
        if self._blink_timer is not None:
            self._blink_timer.cancel()
        await super().close()
        if self._pg is not None:
            self._pg.quit()
            self._pg = self._surface = None

    # -- inputs ---------------------------------------------------------
    async def _pump(self) -> None:
        while True:
            for event in self._pg.event.get():
                self._on_event(event)
            recent = time.monotonic() - self._last_input < IN_USE_S
            in_use = self._pointer_over or self._held or recent
            await asyncio.sleep(PUMP_ACTIVE_S if in_use else PUMP_IDLE_S)

    def _on_event(self, event: Any) -> None:
        pg = self._pg
        if event.type == pg.QUIT:
            log.info("window closed")
            if self.on_close is not None:
                self.on_close()
        elif event.type == pg.MOUSEBUTTONDOWN and event.button == pg.BUTTON_LEFT:
            button = self._layout.button_at(event.pos) if self._layout else None
            if button is not None:
                self._edge(button, True, "mouse")
        elif event.type == pg.MOUSEBUTTONUP and event.button == pg.BUTTON_LEFT:
            for button in [b for b, by in self._held.items() if by == "mouse"]:
                self._edge(button, False, "mouse")
        elif event.type in (pg.KEYDOWN, pg.KEYUP) and event.key in self._keys:
            self._edge(self._keys[event.key], event.type == pg.KEYDOWN, "key")
        elif event.type in (pg.WINDOWENTER, pg.WINDOWLEAVE):
            self._pointer_over = event.type == pg.WINDOWENTER
        elif event.type == pg.WINDOWFOCUSLOST:
            for button in list(self._held):  # a release we will never see
                self._edge(button, False, self._held[button])
        elif event.type == pg.WINDOWSIZECHANGED:
            self._surface = pg.display.get_surface()
            self._relayout(self._surface.get_size())
        elif event.type == pg.WINDOWEXPOSED:
            self._invalidate("all")

    def _edge(self, button: str, down: bool, by: str) -> None:
        self._last_input = time.monotonic()
        if down == (button in self._held):
            return  # a second press of a held button (mouse and key at once)
        if down:
            self._held[button] = by
        else:
            del self._held[button]
        self._invalidate(button)
        try:  # a failing handler costs that edge, not the window
            self.inject(ButtonEvent(button, down))
        except Exception:
            log.exception("button handler failed on %s %s", button, "down" if down else "up")

    # -- outputs --------------------------------------------------------
    def _drive_led(self, button: str, led: Led) -> None:
        self._since[button] = time.monotonic()
        self._invalidate(button)

    def _show_label(self, button: str, text: str) -> None:
        self._invalidate(button)

    @property
    def display(self) -> WindowDisplay:
        return self._display

    @property
    def audio(self) -> AudioEndpoints:
        if self.settings["sound"] == "none":
            return AudioEndpoints()
        sound = self.settings["sound"]
        return AudioEndpoints(
            capture_pcm=self.settings.get("capture_pcm", sound),
            playback_pcm=self.settings.get("playback_pcm", sound),
            mixer=self.settings.get("mixer"),
            mixer_device=self.settings["mixer_device"],
        )

    # -- drawing --------------------------------------------------------
    def _invalidate(self, part: str) -> None:
        """Mark a part ("all", "screen" or a button) for the next draw, which
        runs once per loop turn however many parts changed."""
        self._dirty.add(part)
        if self._pg is not None and not self._draw_pending:
            self._draw_pending = True
            asyncio.get_running_loop().call_soon(self._draw)

    def _relayout(self, size: tuple[int, int]) -> None:
        layout = Layout.fit(size, self.contact_buttons)
        if self._layout is None or layout.scale != self._layout.scale:
            font = self._pg.font.Font(None, max(8, round(FONT_SIZE * layout.scale)))
            hint = self._pg.font.Font(None, max(6, round(HINT_FONT_SIZE * layout.scale)))
            self._fonts = (font, hint)
        self._layout = layout
        self._invalidate("all")

    def _draw(self) -> None:
        self._draw_pending = False
        if self._pg is None or self._layout is None:
            return
        dirty, self._dirty = self._dirty, set()
        pg, layout, now = self._pg, self._layout, time.monotonic()
        if "all" in dirty:
            self._surface.fill(BODY)
            dirty = {"screen", *self.button_names}
        boxes = []
        if "screen" in dirty:
            boxes.append(self._draw_screen(layout))
        for button in dirty - {"screen"}:
            index = contact_index(button)
            if index is not None:
                boxes.append(self._draw_contact(layout, index, now))
            elif button in layout.functions:
                boxes.append(self._draw_function(layout, button))
        pg.display.update([pg.Rect(*b) for b in boxes])
        self._schedule_blink(now)

    def _draw_screen(self, layout: Layout) -> Box:
        pg = self._pg
        box = layout.screen
        bezel = max(2, round(6 * layout.scale))
        frame = Box(box.x - bezel, box.y - bezel, box.w + 2 * bezel, box.h + 2 * bezel)
        pg.draw.rect(self._surface, BEZEL, frame)
        pixels = self._display.image.convert("L").tobytes()
        surface = pg.image.frombytes(pixels, (SCREEN_WIDTH, SCREEN_HEIGHT), "P")
        surface.set_palette_at(0, PIXEL_OFF)
        surface.set_palette_at(255, PIXEL_ON)
        self._surface.blit(pg.transform.scale(surface, (box.w, box.h)), (box.x, box.y))
        return frame

    def _face(self, box: Box, held: bool) -> None:
        pg = self._pg
        pg.draw.rect(self._surface, BODY, box)
        radius = max(2, round(6 * self._layout.scale)) if self._layout else 6
        pg.draw.rect(self._surface, FACE_HELD if held else FACE, box, border_radius=radius)

    def _text(self, text: str, font: Any, colour: RGB, box: Box, align: str) -> None:
        image = font.render(text, True, colour)
        rect = image.get_rect()
        rect.centery = box.center[1]
        if align == "left":
            rect.left = box.x
        elif align == "right":
            rect.right = box.x + box.w
        else:
            rect.centerx = box.center[0]
        self._surface.blit(image, rect)

    def _draw_contact(self, layout: Layout, index: int, now: float) -> Box:
        button = contact_button(index)
        box = layout.contacts[index]
        font, hint = self._fonts or (None, None)
        self._face(box, button in self._held)
        led = self.led(button)
        colour = LED_RGB[led.color] if led_lit(led, self._since[button], now) else LED_DARK
        self._pg.draw.circle(self._surface, colour, layout.leds[index], layout.led_radius)
        pad = round(GAP * layout.scale)
        text_x = layout.leds[index][0] + layout.led_radius + pad
        inner = Box(text_x, box.y, box.x + box.w - pad - text_x, box.h)
        label = self.label(button)
        self._text(label or "-", font, TEXT if label else HINT, inner, "left")
        if index < 9:
            self._text(str(index + 1), hint, HINT, inner, "right")
        return box

    def _draw_function(self, layout: Layout, button: str) -> Box:
        box = layout.functions[button]
        font, hint = self._fonts or (None, None)
        self._face(box, button in self._held)
        name, key = FUNCTION_FACES[button]
        top = Box(box.x, box.y, box.w, box.h * 3 // 5)
        bottom = Box(box.x, box.y + box.h // 2, box.w, box.h // 2)
        self._text(name, font, TEXT, top, "centre")
        self._text(key, hint, HINT, bottom, "centre")
        return box

    def _schedule_blink(self, now: float) -> None:
        """Redraw the blinking LEDs at their next edge, and only then."""
        if self._blink_timer is not None:
            self._blink_timer.cancel()
            self._blink_timer = None
        edges = {
            button: edge
            for button, led in self._leds.items()
            if (edge := next_blink_edge(led, self._since[button], now)) is not None
        }
        if not edges:
            return
        first = min(edges.values())
        due = [button for button, edge in edges.items() if edge - first < 0.002]

        def blink() -> None:
            self._blink_timer = None
            for button in due:
                self._invalidate(button)

        self._blink_timer = asyncio.get_running_loop().call_later(
            max(0.0, first - time.monotonic()), blink
        )
