"""A stand-in for /dev/input/eventN: this machine has no input devices and no uinput.

`FakeInputDevice` is a pipe carrying real `struct input_event` records, so its
events come out of evdev's own reader (`evdev.eventio.EventIO.read`, the C
`device_read_many`) as real `evdev.InputEvent` objects, and `async_read_loop`
is evdev's own, registered on the asyncio loop through the pipe's fd.
Unplugging makes reads fail with ENODEV, as the kernel does for a removed device.
"""

from __future__ import annotations

import errno
import os
import struct
import time
from collections.abc import Iterator

from evdev import InputEvent, ecodes
from evdev.eventio_async import EventIO

# struct input_event on 64-bit Linux: struct timeval, __u16 type, __u16 code, __s32 value.
INPUT_EVENT = struct.Struct("llHHi")


class FakeInputDevice(EventIO):
    def __init__(
        self,
        path: str,
        name: str,
        phys: str = "usb-0000:01:00.0-1.3/input0",
        keys: tuple[int, ...] = (),
    ) -> None:
        self.path = path
        self.name = name
        self.phys = phys
        self.keys = keys or (ecodes.KEY_F1, ecodes.KEY_F2, ecodes.KEY_ENTER)
        self.fd, self._writer = os.pipe()
        os.set_blocking(self.fd, False)
        self.grabbed = False
        self.held_elsewhere = False  # another process has grabbed it
        self.unplugged = False

    def capabilities(self, verbose: bool = False, absinfo: bool = True) -> dict[int, list[int]]:
        return {ecodes.EV_KEY: list(self.keys)}

    def grab(self) -> None:
        if self.grabbed or self.held_elsewhere:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def key(self, code: int, value: int) -> None:
        """One key edge (1 down, 0 up, 2 autorepeat) followed by SYN_REPORT, as the kernel sends."""
        now = time.time()
        sec, usec = int(now), int(now % 1 * 1_000_000)
        record = INPUT_EVENT.pack(sec, usec, ecodes.EV_KEY, code, value)
        record += INPUT_EVENT.pack(sec, usec, ecodes.EV_SYN, ecodes.SYN_REPORT, 0)
        os.write(self._writer, record)

    def unplug(self) -> None:
        """The device goes away: the fd turns readable and reads fail with ENODEV."""
        self.unplugged = True
        os.write(self._writer, INPUT_EVENT.pack(0, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0))

    def read(self) -> Iterator[InputEvent]:
        if self.unplugged:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return super().read()

    @property
    def closed(self) -> bool:
        return self.fd == -1

    def close(self) -> None:
        if self.fd == -1:
            return
        super().close()  # takes the fd off the event loop
        os.close(self.fd)
        os.close(self._writer)
        self.fd = -1
        self.grabbed = False


class InputBench:
    """The set of input devices present, as `evdev.list_devices`/`InputDevice` see it."""

    def __init__(self) -> None:
        self.present: dict[str, FakeInputDevice] = {}
        self.held_elsewhere: set[str] = set()

    def plug(
        self,
        path: str,
        name: str,
        phys: str = "usb-0000:01:00.0-1.3/input0",
        keys: tuple[int, ...] = (),
    ) -> FakeInputDevice:
        device = FakeInputDevice(path, name, phys, keys)
        self.present[path] = device
        return device

    def unplug(self, path: str) -> None:
        self.present.pop(path).unplug()

    def paths(self) -> list[str]:
        return sorted(self.present)

    def open(self, path: str) -> FakeInputDevice:
        """Like `evdev.InputDevice(path)`; reopening a closed device gives a fresh fd."""
        if path not in self.present:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        device = self.present[path]
        if device.grabbed:
            # A second fd on a device another reader holds: closing it leaves theirs open.
            other = FakeInputDevice(path, device.name, device.phys, device.keys)
            other.held_elsewhere = True
            return other
        if device.closed:
            device = self.plug(path, device.name, device.phys, device.keys)
        device.held_elsewhere = path in self.held_elsewhere
        return device
