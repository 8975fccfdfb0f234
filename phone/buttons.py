"""Contact buttons: which contact sits on which button, and what its LED shows.

More contacts than buttons means pages (the `page` button turns them). Each
contact's LED is the top of a stack of layers: the core's own `call` layer
(a call with that contact exists) always wins, then the urgent plugin layers
(something waits for the person: unread messages), then the other plugin
layers (e.g. presence), each group in the order first used. Plugins write
only their own layer.

A layer holds a `Led`, which hides the layers below, or a `LedMark`, which
marks what they show: their colour in its pattern. So unread messages
(a wink) do not hide a contact's presence (its colour), as a BLF key still
shows its line's state while it blinks for a message waiting.

The core's call layer:

| call with the contact          | LED               |
|--------------------------------|-------------------|
| incoming, ringing              | green fast blink  |
| outgoing, calling or ringing   | green slow blink  |
| confirmed                      | green steady      |

`PressTracker` turns the board's raw edges into short and long presses, the
same for every board: a long press fires while the button is still held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from phone.board import (
    LED_OFF,
    Board,
    ButtonEvent,
    Led,
    contact_button,
    contact_index,
)
from phone.uri import parse_sip_uri

CALL_LAYER = "call"


@dataclass(frozen=True)
class LedMark:
    """A layer's mark over the layers below: their colour blinking in `led`'s
    pattern; `led` itself where they show nothing (a contact without presence)."""

    led: Led

    def over(self, below: Led) -> Led:
        return Led(below.color, self.led.pattern) if below.lit else self.led


@dataclass(frozen=True)
class Contact:
    name: str
    uri: str
    blf: bool = False
    conference: bool = False  # a conference room (RFC 4579 focus), for the conference plugin


def address_key(uri: str) -> str:
    """What makes two SIP URIs the same person: user@host, host case-folded."""
    try:
        parsed = parse_sip_uri(uri)
    except ValueError:
        return uri.strip().lower()
    return f"{parsed.user or ''}@{parsed.host.lower()}"


class ContactButtons:
    def __init__(self, board: Board, contacts: Sequence[Contact] = ()) -> None:
        self.board = board
        self.size = board.contact_buttons
        self.page = 0
        self._contacts: list[Contact] = []
        self._layers: dict[str, dict[str, Led | LedMark]] = {CALL_LAYER: {}}
        self._urgent: set[str] = set()
        self.set_contacts(contacts)

    # -- contacts and pages ---------------------------------------------
    @property
    def contacts(self) -> tuple[Contact, ...]:
        return tuple(self._contacts)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self._contacts) // self.size))

    def set_contacts(self, contacts: Sequence[Contact]) -> None:
        self._contacts = list(contacts)
        self.page = min(self.page, self.pages - 1)
        self.refresh()

    def next_page(self) -> None:
        self.page = (self.page + 1) % self.pages
        self.refresh()

    def contact_for(self, button: str) -> Contact | None:
        index = contact_index(button)
        if index is None or index >= self.size:
            return None
        position = self.page * self.size + index
        return self._contacts[position] if position < len(self._contacts) else None

    def find(self, uri: str) -> Contact | None:
        key = address_key(uri)
        return next((c for c in self._contacts if address_key(c.uri) == key), None)

    def show(self, uri: str) -> None:
        """Turn to the page that holds this contact (an incoming call's caller)."""
        key = address_key(uri)
        for position, contact in enumerate(self._contacts):
            if address_key(contact.uri) == key:
                if self.page != position // self.size:
                    self.page = position // self.size
                    self.refresh()
                return

    # -- LEDs -----------------------------------------------------------
    def set_led(self, uri: str, led: Led | LedMark, layer: str, urgent: bool = False) -> None:
        """`urgent` places a new layer above the others but the call layer."""
        if layer not in self._layers:
            self._layers[layer] = {}
            if urgent:
                self._urgent.add(layer)
                rest = [name for name in self._layers if name not in self._urgent]
                order = [CALL_LAYER, *(n for n in self._layers if n in self._urgent), *rest[1:]]
                self._layers = {name: self._layers[name] for name in order}
        self._layers[layer][address_key(uri)] = led
        self.refresh()

    def clear_led(self, uri: str, layer: str) -> None:
        if self._layers.get(layer, {}).pop(address_key(uri), None) is not None:
            self.refresh()

    def led_for(self, uri: str) -> Led:
        """The top lit `Led` of the contact's layers, under the topmost mark above it."""
        key = address_key(uri)
        mark: LedMark | None = None
        for leds in self._layers.values():
            led = leds.get(key)
            if isinstance(led, LedMark):
                mark = mark or led
            elif led is not None and led.lit:
                return led if mark is None else mark.over(led)
        return LED_OFF if mark is None else mark.over(LED_OFF)

    def refresh(self) -> None:
        for index in range(self.size):
            button = contact_button(index)
            contact = self.contact_for(button)
            self.board.set_led(button, self.led_for(contact.uri) if contact else LED_OFF)
            self.board.set_label(button, contact.name if contact else "")

    def describe(self) -> dict[str, dict[str, object]]:
        """The control interface's view of the visible page."""
        out: dict[str, dict[str, object]] = {}
        for index in range(self.size):
            button = contact_button(index)
            contact = self.contact_for(button)
            out[button] = {
                "contact": contact.uri if contact else None,
                "label": contact.name if contact else None,
                "led": self.board.led(button).as_dict(),
            }
        return out


class PressTracker:
    """Short press on release; long press once the hold passes `long_press_ms`."""

    def __init__(self, long_press_ms: int, on_press: Callable[[str, bool], None]) -> None:
        self.long_press_s = long_press_ms / 1000
        self.on_press = on_press
        self._held: dict[str, asyncio.TimerHandle | None] = {}
        self._down_at: dict[str, float] = {}  # held buttons: loop time they went down

    def down_at(self, button: str) -> float | None:
        """When the press on `button` that is still held began (the loop's
        clock, time.monotonic()), or None when it is up."""
        return self._down_at.get(button)

    def edge(self, event: ButtonEvent) -> None:
        if event.down:
            if event.button in self._held:
                return  # a second "down" without "up": ignore
            loop = asyncio.get_running_loop()
            self._held[event.button] = loop.call_later(self.long_press_s, self._long, event.button)
            self._down_at[event.button] = loop.time()
            return
        if event.button not in self._held:
            return  # "up" without "down"
        self._down_at.pop(event.button, None)
        timer = self._held.pop(event.button)
        if timer is not None:  # released before the long-press time: a short press
            timer.cancel()
            self.on_press(event.button, False)

    def _long(self, button: str) -> None:
        self._held[button] = None  # still held; the release is then ignored
        self.on_press(button, True)
