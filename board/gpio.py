"""The Pi's header GPIOs through the kernel's GPIO character device (libgpiod's `gpiod`).

The SD image runs Debian's kernel on mainline device trees, which cannot take
the firmware's `gpio-key`/`gpio-led` overlays; the character device needs
none. The header's GPIOs are the lines of the chip labelled
`pinctrl-bcm2835` (Pi 3, Zero 2 W) or `pinctrl-bcm2711` (Pi 4), found by
label because its number follows probe order; line N is GPIO N.

- The wired keys are one line request: inputs with the internal pull-up,
  active low (a button connects its GPIO to ground), edge events on both
  edges and the kernel's debounce (in software in gpiolib-cdev where the
  controller has none, as on the BCM283x). The board reads the request's
  file descriptor from the asyncio loop, so an idle phone costs nothing.
- Each LED colour is an output line of its own (`LineLed`); blinking is the
  loop's timers, at absolute times so the two colours of an amber LED stay
  in phase.

`SimulatedChip` has the chip's API over a pipe that carries
`struct gpio_v2_line_event` records, as the kernel's request fd does: the
tests (and the image's boot test, whose kernel has no gpio-sim) drive the
board's real reader through it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import struct
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import gpiod
from gpiod.line import Bias, Direction, Edge, Value

from phone.settings import ConfigError

log = logging.getLogger(__name__)

HEADER_CHIP_LABELS = ("pinctrl-bcm2835", "pinctrl-bcm2711")
CONSUMER = "simplephone"
# A push button's contacts bounce for a few ms; 10 ms is well under a press.
DEBOUNCE = timedelta(milliseconds=10)
# struct gpio_v2_line_event (linux/gpio.h): timestamp_ns, id, offset, seqno,
# line_seqno, padding[6]; id is 1 for a rising edge, 2 for a falling one.
LINE_EVENT = struct.Struct("=QIIII24x")
RISING_EDGE, FALLING_EDGE = 1, 2


class LineRequest(Protocol):
    """What the board uses of a `gpiod.LineRequest`."""

    @property
    def fd(self) -> int: ...

    def read_edge_events(self) -> list[gpiod.EdgeEvent]: ...

    def set_value(self, line: int, value: Value) -> None: ...

    def release(self) -> None: ...


class GpioChip(Protocol):
    """What the board uses of a `gpiod.Chip`."""

    @property
    def path(self) -> str: ...

    def request_lines(
        self, config: dict[Any, gpiod.LineSettings | None], consumer: str | None = None
    ) -> Any: ...

    def get_line_info(self, line: int) -> gpiod.LineInfo: ...

    def close(self) -> None: ...


def key_settings() -> gpiod.LineSettings:
    """A button between the GPIO and ground: pulled up, pressed is low."""
    return gpiod.LineSettings(
        direction=Direction.INPUT,
        edge_detection=Edge.BOTH,
        bias=Bias.PULL_UP,
        active_low=True,
        debounce_period=DEBOUNCE,
    )


def led_settings() -> gpiod.LineSettings:
    """A LED from the GPIO through its resistor to ground: driven high is lit."""
    return gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE)


def open_header_chip(dev: Path = Path("/dev")) -> gpiod.Chip:
    """The GPIO chip of the 40-pin header, found by label; an OSError saying why not."""
    labels = []
    for path in sorted(dev.glob("gpiochip*")):
        if not gpiod.is_gpiochip_device(str(path)):
            continue
        try:
            chip = gpiod.Chip(str(path))
        except PermissionError as e:
            raise PermissionError(
                e.errno,
                f"cannot open {path}: {e.strerror} (the phone's user needs group gpio:"
                " image/rootfs/etc/udev/rules.d/60-simplephone.rules)",
            ) from None
        label = chip.get_info().label
        if label in HEADER_CHIP_LABELS:
            return chip
        labels.append(f"{path.name} is {label}")
        chip.close()
    found = "; ".join(labels) or f"no GPIO chip under {dev}"
    raise FileNotFoundError(
        errno.ENODEV,
        f"no GPIO chip labelled {' or '.join(HEADER_CHIP_LABELS)} ({found}):"
        " is this a Raspberry Pi 3, 4 or Zero 2 W?",
    )


def request_lines(
    chip: GpioChip, lines: dict[int, str], settings: gpiod.LineSettings
) -> LineRequest:
    """Request `lines` (GPIO -> the config key that wires it) with `settings`.

    A refusal is a ConfigError naming the key and the pin: a line that
    another driver or program holds, or a chip the phone may not use.
    """
    try:
        request: LineRequest = chip.request_lines({tuple(lines): settings}, consumer=CONSUMER)
    except OSError as e:
        raise _refusal(chip, lines, e) from None
    return request


def _refusal(chip: GpioChip, lines: dict[int, str], error: OSError) -> ConfigError:
    if error.errno == errno.EBUSY:
        for gpio, key in lines.items():
            info = chip.get_line_info(gpio)
            if info.used:
                return ConfigError(
                    key, f"GPIO{gpio} is in use by {info.consumer or 'another program'}"
                )
    gpio, key = next(iter(lines.items()))
    if error.errno in (errno.EACCES, errno.EPERM):
        return ConfigError(
            key,
            f"GPIO{gpio}: {chip.path} refused the phone ({error.strerror});"
            " its user needs group gpio",
        )
    pins = ", ".join(f"GPIO{gpio} ({key})" for gpio, key in lines.items())
    return ConfigError(key, f"cannot request {pins} on {chip.path}: {error.strerror or error}")


class LineLed:
    """One LED colour on a GPIO output line (the `LedChannel` of board/rpi.py).

    Blinking toggles the line from the loop's timers: two wake-ups a period,
    no thread."""

    def __init__(self, chip: HeaderChip, gpio: int, key: str) -> None:
        self._chip = chip
        self.gpio = gpio
        self.key = key
        self._request: LineRequest | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._failed = False

    def claim(self) -> str | None:
        try:
            self._request = request_lines(self._chip.open(), {self.gpio: self.key}, led_settings())
        except ConfigError as e:
            return e.message
        except ChipUnavailable as e:
            return str(e)
        return None

    def release(self) -> None:
        self._stop_blinking()
        if self._request is not None:
            self._request.release()  # the line goes back to an input
            self._request = None

    def on(self) -> None:
        self._stop_blinking()
        self._set(True)

    def off(self) -> None:
        self._stop_blinking()
        self._set(False)

    def blink(self, on_ms: int, off_ms: int) -> None:
        self._stop_blinking()
        loop = asyncio.get_running_loop()
        self._set(True)
        self._timer = loop.call_at(loop.time() + on_ms / 1000, self._toggle, False, on_ms, off_ms)

    def _toggle(self, lit: bool, on_ms: int, off_ms: int) -> None:
        assert self._timer is not None
        due = self._timer.when()  # the edge's planned time, not its late arrival: no drift
        try:
            self._set(lit)
        except OSError as e:
            self.report_failure(e)
        loop = asyncio.get_running_loop()
        hold = on_ms if lit else off_ms
        self._timer = loop.call_at(due + hold / 1000, self._toggle, not lit, on_ms, off_ms)

    def _stop_blinking(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set(self, lit: bool) -> None:
        if self._request is not None:
            self._request.set_value(self.gpio, Value.ACTIVE if lit else Value.INACTIVE)

    def report_failure(self, error: OSError) -> None:
        """Log a failed write once per LED: it will fail the same way every time."""
        if not self._failed:
            log.error("LED on GPIO%d (%s): %s", self.gpio, self.key, error)
            self._failed = True


class ChipUnavailable(Exception):
    """The header's GPIO chip cannot be opened; the message says why."""


class HeaderChip:
    """The header's GPIO chip, opened on first use and shared by the keys and LEDs."""

    def __init__(self, open_chip: Callable[[], GpioChip]) -> None:
        self._open_chip = open_chip
        self._chip: GpioChip | None = None

    def open(self) -> GpioChip:
        if self._chip is None:
            try:
                self._chip = self._open_chip()
            except OSError as e:
                raise ChipUnavailable(e.strerror or str(e)) from None
        return self._chip

    def close(self) -> None:
        if self._chip is not None:
            self._chip.close()
            self._chip = None


# -- the stand-in ------------------------------------------------------------


class SimulatedChip:
    """A header chip without hardware: `pull` a line low or high and its key
    request's fd carries the edge event the kernel would send.

    Lines another program holds are given as `busy` (GPIO -> its consumer)."""

    def __init__(self, label: str = HEADER_CHIP_LABELS[0], busy: dict[int, str] | None = None):
        self.label = label
        self.path = "/dev/gpiochip-simulated"
        self.busy = dict(busy or {})
        self.requests: list[SimulatedLines] = []

    def request_lines(
        self, config: dict[Any, gpiod.LineSettings | None], consumer: str | None = None
    ) -> SimulatedLines:
        lines = {gpio: settings for gpios, settings in config.items() for gpio in gpios}
        if self.busy.keys() & lines.keys() or any(r.holds(lines) for r in self.requests):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        request = SimulatedLines(self, lines)
        self.requests.append(request)
        return request

    def get_line_info(self, line: int) -> Any:
        consumer = self.busy.get(line)
        if consumer is None and any(r.holds({line: None}) for r in self.requests):
            consumer = CONSUMER
        return _LineUse(used=consumer is not None, consumer=consumer or "")

    def value(self, gpio: int) -> bool:
        """Whether an output line is driven active (a LED lit)."""
        return next(r.values[gpio] for r in self.requests if r.holds({gpio: None}))

    def pull(self, gpio: int, low: bool) -> None:
        """Pull a key's line low (a press: it is active low) or let it go high."""
        for request in self.requests:
            if request.holds({gpio: None}):
                request.edge(gpio, low)

    def close(self) -> None:
        for request in list(self.requests):
            request.release()


class _LineUse:
    def __init__(self, used: bool, consumer: str) -> None:
        self.used = used
        self.consumer = consumer


class SimulatedLines:
    """A line request of `SimulatedChip`: edge events come through a pipe."""

    def __init__(self, chip: SimulatedChip, lines: dict[int, gpiod.LineSettings | None]) -> None:
        self._chip = chip
        self.settings = lines
        self.values = dict.fromkeys(lines, False)
        self._read_fd, self._write_fd = os.pipe()
        self._seqno = 0

    @property
    def fd(self) -> int:
        return self._read_fd

    def holds(self, lines: Iterable[int] | dict[int, Any]) -> bool:
        return self._read_fd >= 0 and bool(set(lines) & self.settings.keys())

    def edge(self, gpio: int, low: bool) -> None:
        settings = self.settings[gpio]
        active = low if settings is not None and settings.active_low else not low
        if active == self.values[gpio]:
            return
        self.values[gpio] = active
        self._seqno += 1
        event = LINE_EVENT.pack(
            time.monotonic_ns(),
            RISING_EDGE if active else FALLING_EDGE,
            gpio,
            self._seqno,
            self._seqno,
        )
        os.write(self._write_fd, event)

    def read_edge_events(self) -> list[gpiod.EdgeEvent]:
        data = os.read(self._read_fd, 16 * LINE_EVENT.size)
        return [
            gpiod.EdgeEvent(_EVENT_TYPES[kind], timestamp_ns, offset, seqno, line_seqno)
            for timestamp_ns, kind, offset, seqno, line_seqno in LINE_EVENT.iter_unpack(data)
        ]

    def set_value(self, line: int, value: Value) -> None:
        self.values[line] = value is Value.ACTIVE

    def release(self) -> None:
        if self._read_fd >= 0:
            os.close(self._read_fd)
            os.close(self._write_fd)
            self._read_fd = self._write_fd = -1
            self._chip.requests.remove(self)


_EVENT_TYPES = {
    RISING_EDGE: gpiod.EdgeEvent.Type.RISING_EDGE.value,
    FALLING_EDGE: gpiod.EdgeEvent.Type.FALLING_EDGE.value,
}
