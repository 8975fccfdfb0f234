"""The Raspberry Pi board: GPIO or evdev buttons, GPIO or kernel-class LEDs, a luma.oled panel, ALSA.

Thin on purpose: each piece of hardware is reached through the kernel's own
interface, so the board only maps names.

- The pin map, `[board.rpi.wiring]` (see `board.pinmap`), says which GPIO
  each button's key and LED colours are wired to. They are lines of the
  header's GPIO chip, through the kernel's GPIO character device
  (`board.gpio`): the keys one line request whose edge events the loop
  reads, each LED colour an output line. No device-tree overlay is needed.
- Other buttons come from evdev input devices, a USB keypad say. Devices are
  named by path or by their evdev name; `[board.rpi.keys]` maps key names
  (`evdev.ecodes`) to the phone's buttons. A device is grabbed (EVIOCGRAB) so
  presses never reach a console, and one that disappears is reopened with
  back-off.
- Other LEDs, in `[board.rpi.leds]`, are kernel LED class devices under
  `/sys/class/leds`, one per colour of a contact button's LED. Blinking uses
  the `timer` trigger, so it costs no CPU (Documentation/leds/leds-class.rst,
  ledtrig-timer). A colour may instead name a GPIO number: a line of the
  header's chip, as in the pin map. A red/green LED shows amber with both on.
  The LEDs are claimed at `start`; what the core set before is shown then.
- The screen is an SSD1306 or SH1106 128x64 panel on I2C or SPI, opened on
  first use through luma.core's serial interfaces.

Settings (`[board.rpi]`)::

    inputs = ["/dev/input/by-path/platform-keys-event", "USB Keypad"]  # path or evdev name
    leds_root = "/sys/class/leds"
    capture_pcm = "default"
    playback_pcm = "default"
    mixer = "Master"          # the volume control (a softvol control on boards without one)
    mixer_device = "default"  # the ALSA control device that has it

    [board.rpi.keys]          # evdev key name = button name
    KEY_F1 = "contact-1"
    KEY_ENTER = "answer"

    [board.rpi.leds]          # contact button = { colour = kernel LED name }
    "contact-1" = { green = "sp:green:1", red = "sp:red:1" }
    "contact-2" = { green = 17, red = 27 }          # BCM GPIO numbers

    [board.rpi.display]
    driver = "ssd1306"        # or "sh1106"
    bus = "i2c"               # or "spi"
    port = 1                  # /dev/i2c-1, or SPI bus 0
    address = 0x3C            # I2C only
    device = 0                # SPI chip select
    dc_pin = 24               # SPI only: BCM pins for data/command and reset
    reset_pin = 25
    rotate = 0                # 0 or 180 degrees (90/270 would make the screen 64x128)
    contrast = 255            # 0..255; absent: the driver's default

    [board.rpi.wiring]        # the pin map (board.pinmap); BCM GPIO numbers
    sound = "usb"             # the only sound card the image's kernel can take
    [board.rpi.wiring.buttons]
    contact-1 = { key = 4, green = 17, red = 27 }
    end = { key = 26 }
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import evdev
import luma.core.error
from evdev import ecodes
from luma.core.interface.serial import i2c, spi
from luma.oled.device import sh1106, ssd1306

from board.gpio import (
    ChipUnavailable,
    GpioChip,
    HeaderChip,
    LineLed,
    LineRequest,
    key_settings,
    open_header_chip,
    request_lines,
)
from board.pinmap import WIRING_SECTION, validate_wiring, wired_pins
from phone.board import (
    BLINK_MS,
    FUNCTION_BUTTONS,
    SCREEN_HEIGHT,
    SCREEN_WIDTH,
    AudioEndpoints,
    Board,
    ButtonEvent,
    ButtonHandler,
    Led,
    LedColor,
    LedPattern,
    contact_index,
)
from phone.retry import Backoff
from phone.settings import ConfigError, Table, describe_value

log = logging.getLogger(__name__)

SECTION = "board.rpi"
DEFAULT_LEDS_ROOT = "/sys/class/leds"
PANEL_DRIVERS: dict[str, Callable[..., Any]] = {"ssd1306": ssd1306, "sh1106": sh1106}
LED_COLOURS = ("green", "red")
# Which LED colours light up for each colour the core asks for.
LIT_COLOURS = {
    LedColor.OFF: (),
    LedColor.GREEN: ("green",),
    LedColor.RED: ("red",),
    LedColor.AMBER: ("green", "red"),
}
# EV_KEY values: 1 pressed, 0 released; 2 is the kernel's autorepeat, which the core
# does not want (it times long presses itself).
KEY_DOWN, KEY_UP = 1, 0
# Reopening a lost input device: first delay, doubling up to the last (seconds).
REOPEN_DELAYS = (0.5, 10.0)
MAX_GPIO = 53  # BCM numbering, the highest GPIO line of the SoC
# The timer trigger's files, refused until udev gives them to the phone (SysfsLed):
# written again every 50 ms, for up to 2 s.
DELAY_RETRY_S = 0.05
DELAY_RETRIES = 40


class KeyInput(Protocol):
    """What the board uses of an `evdev.InputDevice`."""

    @property
    def path(self) -> str | bytes: ...

    @property
    def name(self) -> str: ...

    @property
    def phys(self) -> str: ...

    def capabilities(self) -> dict[int, list[int]]: ...

    def grab(self) -> None: ...

    def close(self) -> None: ...

    def async_read_loop(self) -> AsyncIterator[evdev.InputEvent]: ...


class RpiBoard(Board):
    """A phone front wired to a Raspberry Pi.

    The keyword arguments are the seam to the kernel (how an input device, the
    list of input devices, the header's GPIO chip and the panel's bus are
    opened) and the reopen back-off; the defaults are the real ones.
    """

    kind = "rpi"

    def __init__(
        self,
        contact_buttons: int,
        settings: dict[str, Any] | None = None,
        *,
        open_input: Callable[[str], KeyInput] = evdev.InputDevice,
        list_inputs: Callable[[], Iterable[str]] = evdev.list_devices,
        open_chip: Callable[[], GpioChip] = open_header_chip,
        open_bus: Callable[[dict[str, Any]], Any] | None = None,
        reopen_delays: tuple[float, float] = REOPEN_DELAYS,
    ) -> None:
        super().__init__(contact_buttons, self.validate_settings(settings or {}))
        self._open_input = open_input
        self._list_inputs = list_inputs
        self._open_bus = open_bus or panel_bus
        self._reopen_delays = reopen_delays
        self._chip = HeaderChip(open_chip)
        self._inputs = self.settings["inputs"]
        self._keymap = {ecodes.ecodes[key]: button for key, button in self.settings["keys"].items()}
        for key, button in self.settings["keys"].items():
            self._check_button(f"{SECTION}.keys.{key}", button)
        pins = wired_pins(self.settings["wiring"]) if self.settings["wiring"] else []
        for button in dict.fromkeys(pin.button for pin in pins):
            self._check_button(f"{WIRING_SECTION}.buttons.{button}", button)
        # GPIO -> (button, the config key that wires it)
        self._gpio_keys = {pin.gpio: (pin.button, pin.key) for pin in pins if pin.role == "key"}
        root = Path(self.settings["leds_root"])
        self._leds_wired: dict[str, dict[str, LedChannel]] = {}
        self._led_keys: dict[tuple[str, str], str] = {}  # (button, colour) -> its config key
        for button, colours in self.settings["leds"].items():
            self._check_button(f"{SECTION}.leds.{button}", button)
            for colour, where in colours.items():
                key = f"{SECTION}.leds.{button}.{colour}"
                self._add_led(button, colour, key, self._led_channel(where, key, root))
        for pin in pins:
            if pin.role != "key":
                self._add_led(pin.button, pin.role, pin.key, LineLed(self._chip, pin.gpio, pin.key))
        self._leds_live = False
        self._panel: Any = None
        self._readers: list[asyncio.Task[None]] = []
        self._key_lines: LineRequest | None = None

    def _led_channel(self, where: str | int, key: str, root: Path) -> LedChannel:
        """A GPIO number is a line of the header's chip, a name a kernel LED."""
        if isinstance(where, int):
            return LineLed(self._chip, where, key)
        return SysfsLed(root, where)

    def _add_led(self, button: str, colour: str, key: str, channel: LedChannel) -> None:
        self._leds_wired.setdefault(button, {})[colour] = channel
        self._led_keys[button, colour] = key

    def _check_button(self, key: str, button: str) -> None:
        index = contact_index(button)
        if index is not None and index >= self.contact_buttons:
            raise ConfigError(
                key,
                f"{describe_value(button)} is beyond the board's {self.contact_buttons} contact buttons",
            )

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Check `[board.rpi]` and fill in the defaults.

        Button numbers are checked against the board's size when it is built;
        that the LEDs, input devices and bus exist is checked at `start`, on
        the Pi itself.
        """
        section = Table(SECTION, settings)
        inputs = section.texts("inputs")
        keys = _validate_keys(section.table("keys"))
        if keys and not inputs:
            raise section.missing("inputs", "keys are mapped but no input device")
        if inputs and not keys:
            raise section.missing("keys", "input devices given but no key mapped")
        leds = _validate_leds(section.table("leds"))
        display = _validate_display(section.table("display"))
        wiring = validate_wiring(section.table("wiring"), display)
        _check_wiring_against(wiring, leds)
        normalised = {
            "inputs": inputs,
            "keys": keys,
            "leds_root": section.text("leds_root", DEFAULT_LEDS_ROOT),
            "leds": leds,
            "display": display,
            "wiring": wiring,
            "capture_pcm": section.text("capture_pcm", "default"),
            "playback_pcm": section.text("playback_pcm", "default"),
            "mixer": section.text("mixer", "Master"),
            "mixer_device": section.text("mixer_device", "default"),
        }
        section.finish()
        return normalised

    # -- lifecycle ------------------------------------------------------
    async def start(self, handler: ButtonHandler) -> None:
        """Claim the LEDs and show what they were set to, open the panel, request
        the wired keys' lines, read every input.

        Fails with ConfigError naming the key of a missing LED, key line or
        bus; what was claimed by then is given back.
        """
        try:
            for button, colours in self._leds_wired.items():
                for colour, channel in colours.items():
                    problem = channel.claim()
                    if problem is not None:
                        raise ConfigError(self._led_keys[button, colour], problem)
            self._leds_live = True
            for button in self._leds_wired:
                self._drive_led(button, self.led(button))
            self.open_display()
            if self._gpio_keys:
                self._key_lines = self._request_keys()
        except ConfigError:
            self._release_leds()
            self._chip.close()
            raise
        await super().start(handler)
        if self._key_lines is not None:
            asyncio.get_running_loop().add_reader(self._key_lines.fd, self._on_key_lines)
            pins = ", ".join(f"GPIO{gpio} {b}" for gpio, (b, _) in self._gpio_keys.items())
            log.info("reading buttons from GPIO lines: %s", pins)
        if not self._inputs and not self._gpio_keys:
            log.warning("no buttons wired or input devices configured: the buttons will not work")
        for spec in self._inputs:
            self._readers.append(asyncio.create_task(self._read_keys(spec), name=f"keys {spec}"))

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._readers.clear()
        if self._key_lines is not None:
            asyncio.get_running_loop().remove_reader(self._key_lines.fd)
            self._key_lines.release()
            self._key_lines = None
        await super().close()
        self._release_leds()
        self._chip.close()
        if self._panel is not None:
            self._panel.cleanup()
            self._panel = None

    def _release_leds(self) -> None:
        self._leds_live = False
        for colours in self._leds_wired.values():
            for channel in colours.values():
                channel.release()

    # -- buttons --------------------------------------------------------
    def _request_keys(self) -> LineRequest:
        """One line request for every wired key (board.gpio.key_settings)."""
        keys = {gpio: key for gpio, (_, key) in self._gpio_keys.items()}
        try:
            chip = self._chip.open()
        except ChipUnavailable as e:
            raise ConfigError(next(iter(keys.values())), str(e)) from None
        return request_lines(chip, keys, key_settings())

    def _on_key_lines(self) -> None:
        """The key lines' fd is readable: deliver each edge the kernel debounced."""
        assert self._key_lines is not None
        try:
            events = self._key_lines.read_edge_events()
        except OSError as e:
            log.error("GPIO key lines lost (%s): the wired buttons stop working", e)
            asyncio.get_running_loop().remove_reader(self._key_lines.fd)
            return
        for event in events:
            button, _ = self._gpio_keys[event.line_offset]
            down = event.event_type is event.Type.RISING_EDGE  # active low: pressed is "rising"
            # The kernel stamps edges on CLOCK_MONOTONIC, as time.monotonic reads it.
            self._deliver(ButtonEvent(button, down=down, at=event.timestamp_ns / 1e9))

    async def _read_keys(self, spec: str) -> None:
        """Deliver key edges from one input device for as long as the board runs.

        A device can vanish (a USB keypad unplugged: reads fail with ENODEV).
        That is logged once; the device is then looked for again with back-off,
        and keys it held down are released so no press stays stuck.
        """
        backoff = Backoff(*self._reopen_delays)
        missing = False
        while True:
            try:
                device = self._open_grabbed(spec)
            except OSError as e:
                if not missing:
                    log.warning("input %s unavailable (%s); looking for it again", spec, e)
                    missing = True
                await asyncio.sleep(backoff.delay())
                continue
            log.info("reading buttons from %s (%s)", device.path, device.name)
            missing = False
            backoff.reset()
            held: set[str] = set()
            try:
                async for event in device.async_read_loop():
                    self._on_input_event(event, held)
            except OSError as e:
                log.warning("input %s lost (%s); looking for it again", spec, e)
                missing = True
                for button in sorted(held):
                    self._deliver(ButtonEvent(button, down=False))
            finally:
                with contextlib.suppress(OSError):
                    device.close()
            await asyncio.sleep(backoff.first)

    def _open_grabbed(self, spec: str) -> KeyInput:
        """Open the device and grab it (EVIOCGRAB), so no console sees the keys."""
        device = self._find_input(spec)
        try:
            device.grab()
        except OSError:
            device.close()
            raise
        return device

    def _find_input(self, spec: str) -> KeyInput:
        """Open an input device by path or by evdev name (the first match)."""
        if spec.startswith("/"):
            return self._open_input(spec)
        for path in self._list_inputs():
            try:
                device = self._open_input(path)
            except OSError:
                continue
            if device.name == spec:
                return device
            device.close()
        raise OSError(errno.ENODEV, f"no input device named {spec!r}")

    def _on_input_event(self, event: evdev.InputEvent, held: set[str]) -> None:
        if event.type != ecodes.EV_KEY or event.value not in (KEY_DOWN, KEY_UP):
            return
        button = self._keymap.get(event.code)
        if button is None:
            log.debug("unmapped key %s", ecodes.KEY.get(event.code, event.code))
            return
        down = event.value == KEY_DOWN
        if down:
            held.add(button)
        else:
            held.discard(button)
        self._deliver(ButtonEvent(button, down=down, at=time.monotonic()))

    def _deliver(self, event: ButtonEvent) -> None:
        """Hand an edge to the core; a failing handler costs that edge, not the buttons."""
        try:
            self.inject(event)
        except Exception:
            log.exception(
                "button handler failed on %s %s", event.button, "down" if event.down else "up"
            )

    # -- LEDs -----------------------------------------------------------
    def _drive_led(self, button: str, led: Led) -> None:
        """Put `led` on the hardware; before `start` it is only remembered."""
        wired = self._leds_wired.get(button)
        if not wired:
            log.debug("no LED wired on %s", button)
            return
        if not self._leds_live:
            return
        lit = {c for c in LIT_COLOURS[led.color] if c in wired}
        if led.lit and not lit:
            # A one-colour LED shows every colour as "on".
            lit = set(wired)
        # Dark channels first, so changing colour never flashes both.
        for colour in sorted(wired, key=lambda c: c in lit):
            channel = wired[colour]
            try:
                if colour not in lit:
                    channel.off()
                elif led.pattern is LedPattern.STEADY:
                    channel.on()
                else:
                    channel.blink(*BLINK_MS[led.pattern])
            except OSError as e:
                channel.report_failure(e)

    # -- screen and sound -----------------------------------------------
    def open_display(self) -> Any:
        """The panel, opened and initialised on first use (ConfigError if it is not there)."""
        if self._panel is None:
            settings = self.settings["display"]
            self._panel = open_panel(settings, self._open_bus(settings))
        return self._panel

    @property
    def display(self) -> Any:
        return self.open_display()

    @property
    def audio(self) -> AudioEndpoints:
        return AudioEndpoints(
            capture_pcm=self.settings["capture_pcm"],
            playback_pcm=self.settings["playback_pcm"],
            mixer=self.settings["mixer"],
            mixer_device=self.settings["mixer_device"],
        )


class LedChannel(Protocol):
    """One colour of one button's LED, as the board drives it."""

    def claim(self) -> str | None:
        """Take the LED for the phone; None, or why it cannot be used."""

    def release(self) -> None: ...

    def on(self) -> None: ...

    def off(self) -> None: ...

    def blink(self, on_ms: int, off_ms: int) -> None: ...

    def report_failure(self, error: OSError) -> None: ...


class SysfsLed:
    """One kernel LED class device: `<root>/<name>/{brightness,trigger,delay_on,delay_off}`.

    Selecting the timer trigger makes its delay_on and delay_off files anew,
    owned by root; on the SD image a udev rule gives them to the phone's group
    on the change event that follows (image/rootfs/etc/udev/rules.d). Until it
    has, a write is refused: the delays are written again on the loop every
    `DELAY_RETRY_S`, for up to `DELAY_RETRIES` times, while the kernel blinks
    at its default rate."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self._folder = root / name
        self._max_brightness: str | None = None
        self._failed = False
        self._retry: asyncio.TimerHandle | None = None

    def claim(self) -> str | None:
        if (self._folder / "brightness").is_file():
            return None
        return f"no LED {describe_value(self.name)} under {describe_value(str(self.root))}"

    def release(self) -> None:
        """Nothing to give back (the kernel owns the LED) but a pending write."""
        self._cancel_retry()

    def on(self) -> None:
        self._cancel_retry()
        self._write("trigger", "none")
        self._write("brightness", self._full())

    def off(self) -> None:
        self._cancel_retry()
        # Writing 0 to brightness would also stop a trigger; "none" first says so plainly.
        self._write("trigger", "none")
        self._write("brightness", "0")

    def blink(self, on_ms: int, off_ms: int) -> None:
        self._cancel_retry()
        # Selecting the timer trigger creates delay_on/delay_off (500 ms each).
        self._write("trigger", "timer")
        try:
            self._write_delays(on_ms, off_ms)
        except PermissionError:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise  # from the PermissionError: no loop to wait on
            self._retry_delays(loop, on_ms, off_ms, DELAY_RETRIES)

    def _write_delays(self, on_ms: int, off_ms: int) -> None:
        self._write("delay_on", str(on_ms))
        self._write("delay_off", str(off_ms))

    def _retry_delays(
        self, loop: asyncio.AbstractEventLoop, on_ms: int, off_ms: int, left: int
    ) -> None:
        self._retry = loop.call_later(
            DELAY_RETRY_S, self._delays_again, loop, on_ms, off_ms, left - 1
        )

    def _delays_again(
        self, loop: asyncio.AbstractEventLoop, on_ms: int, off_ms: int, left: int
    ) -> None:
        self._retry = None
        try:
            self._write_delays(on_ms, off_ms)
        except PermissionError as e:
            if left > 0:
                self._retry_delays(loop, on_ms, off_ms, left)
            else:
                self.report_failure(e)
        except OSError as e:
            self.report_failure(e)

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def report_failure(self, error: OSError) -> None:
        """Log a failed write once per LED: it will fail the same way every time."""
        if not self._failed:
            log.error("LED %s: cannot write under %s: %s", self.name, self._folder, error)
            self._failed = True

    def _full(self) -> str:
        if self._max_brightness is None:
            try:
                self._max_brightness = (self._folder / "max_brightness").read_text().strip()
            except FileNotFoundError:
                self._max_brightness = "1"
        return self._max_brightness

    def _write(self, attribute: str, value: str) -> None:
        with open(self._folder / attribute, "w") as f:
            f.write(value)


# -- the panel --------------------------------------------------------------


def panel_bus(display: dict[str, Any]) -> Any:
    """Open the bus the panel hangs on (a luma.core serial interface).

    A missing bus is a config problem on this Pi: name the key and the fix.
    """
    key = f"{SECTION}.display.port"
    bus = display["bus"]
    try:
        if bus == "i2c":
            return i2c(port=display["port"], address=display["address"])
        return spi(
            port=display["port"],
            device=display["device"],
            gpio_DC=display["dc_pin"],
            gpio_RST=display["reset_pin"],
        )
    except luma.core.error.DeviceNotFoundError as e:
        # On the SD image's kernel I2C1 is on and i2c-dev loaded at boot; its
        # mainline device tree leaves SPI0 off, and no config.txt line turns it on.
        hint = (
            "is the i2c-dev module loaded?"
            if bus == "i2c"
            else "SPI0 is off in the SD image's device tree: put the panel on I2C"
        )
        raise ConfigError(key, f"no {bus} bus {display['port']} ({e}; {hint})") from None
    except (luma.core.error.Error, ImportError) as e:
        raise ConfigError(key, f"cannot open {bus} bus {display['port']}: {e}") from None


def open_panel(display: dict[str, Any], bus: Any) -> Any:
    """Build the luma.oled device for the panel on `bus`; it is initialised over the bus."""
    driver = PANEL_DRIVERS[display["driver"]]
    try:
        panel = driver(
            serial_interface=bus,
            width=SCREEN_WIDTH,
            height=SCREEN_HEIGHT,
            rotate=display["rotate"] // 90,
        )
        if display["contrast"] is not None:
            panel.contrast(display["contrast"])
    except OSError as e:
        where = f"address {display['address']:#04x}" if display["bus"] == "i2c" else "the bus"
        raise ConfigError(
            f"{SECTION}.display.{'address' if display['bus'] == 'i2c' else 'bus'}",
            f"no {display['driver']} panel answers at {where}: {e.strerror or e}",
        ) from None
    log.info("panel %s on %s bus %d", display["driver"], display["bus"], display["port"])
    return panel


# -- settings ---------------------------------------------------------------


def _check_wiring_against(wiring: dict[str, Any] | None, leds: dict[str, Any]) -> None:
    """A button's LED is wired in the pin map or in `leds`, not in both."""
    for pin in wired_pins(wiring) if wiring else ():
        if pin.role != "key" and pin.button in leds:
            raise ConfigError(
                f"{SECTION}.leds.{pin.button}",
                f"is wired in {WIRING_SECTION}.buttons.{pin.button} already",
            )


def _validate_keys(section: Table) -> dict[str, str]:
    keys: dict[str, str] = {}
    by_code: dict[int, str] = {}
    for name in section:
        button = section.text(name, required=True)
        if not name.startswith(("KEY_", "BTN_")) or name not in ecodes.ecodes:
            raise ConfigError(section.key(name), "not an evdev key name (KEY_* or BTN_*)")
        if button not in FUNCTION_BUTTONS and contact_index(button) is None:
            raise ConfigError(
                section.key(name),
                f"no button {describe_value(button)}: "
                f"use contact-N or one of {', '.join(FUNCTION_BUTTONS)}",
            )
        # Some names are aliases of one code (KEY_COFFEE is KEY_SCREENLOCK).
        code = ecodes.ecodes[name]
        if code in by_code:
            raise ConfigError(
                section.key(name), f"is the same key code ({code}) as {by_code[code]}"
            )
        by_code[code] = name
        keys[name] = button
    return keys


def _validate_leds(section: Table) -> dict[str, dict[str, str | int]]:
    """Each colour is a kernel LED name or a BCM GPIO number (a line of the header's chip)."""
    leds: dict[str, dict[str, str | int]] = {}
    for button in section:
        if contact_index(button) is None:
            raise ConfigError(section.key(button), "LEDs sit on contact buttons (contact-N) only")
        colours = section.table(button, LED_COLOURS)
        wired: dict[str, str | int] = {}
        for colour in LED_COLOURS:
            where = colours.take(colour)
            if where is None:
                continue
            if type(where) is int:
                colours.integer(colour, 0, MAX_GPIO)
            elif not isinstance(where, str):
                raise ConfigError(
                    colours.key(colour),
                    f"must be a kernel LED name or a GPIO number, got {describe_value(where)}",
                )
            elif not where.strip() or "/" in where or where in (".", ".."):
                raise ConfigError(
                    colours.key(colour), f"not a kernel LED name: {describe_value(where)}"
                )
            wired[colour] = where
        if not wired:
            raise ConfigError(
                section.key(button), "needs a green or red LED (kernel LED name or GPIO number)"
            )
        leds[button] = wired
    return leds


def _validate_display(section: Table) -> dict[str, Any]:
    display: dict[str, Any] = {
        "driver": section.choice("driver", PANEL_DRIVERS, "ssd1306"),
        "bus": section.choice("bus", ("i2c", "spi"), "i2c"),
    }
    i2c_bus = display["bus"] == "i2c"
    display["port"] = section.integer("port", 0, 255, 1 if i2c_bus else 0)
    display["address"] = section.integer("address", 0x03, 0x77, 0x3C)
    display["device"] = section.integer("device", 0, 255, 0)
    display["dc_pin"] = section.integer("dc_pin", 0, MAX_GPIO, 24)
    display["reset_pin"] = section.integer("reset_pin", 0, MAX_GPIO, 25)
    rotate = section.take("rotate")
    if rotate is None:
        rotate = 0
    if type(rotate) is not int or rotate not in (0, 180):
        raise ConfigError(
            section.key("rotate"),
            f"must be 0 or 180 (90/270 would make the screen 64x128), got {describe_value(rotate)}",
        )
    display["rotate"] = rotate
    display["contrast"] = section.integer("contrast", 0, 255)
    section.finish()
    return display
