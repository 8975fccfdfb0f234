"""A private X server (Xvfb) and what a person does to a window on it: click,
type, resize, close, look. Real X events through xdotool and Xlib, so the
emulator's window gets exactly what a desktop would send it."""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

APT_LINE = "apt-get install -y --no-install-recommends xvfb xdotool imagemagick"
TOOLS = ("Xvfb", "xdotool", "import")
CLIENT_MESSAGE = 33  # X.h
CLOSE_ENOUGH = 48  # a channel may differ this much (antialiased text) ...
MOSTLY_SAME = 0.015  # ... and this share of the pixels may differ more


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


class Xvfb:
    """An X server on a display number it picks itself (-displayfd): no races
    with other servers on the machine. -noreset: by default Xvfb resets when
    its last client leaves, and a client connecting meanwhile is refused."""

    def __init__(self, size: str = "1024x768x24") -> None:
        read, write = os.pipe()
        self.process = subprocess.Popen(
            [
                "Xvfb",
                "-displayfd",
                str(write),
                "-screen",
                "0",
                size,
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(write)
        with os.fdopen(read) as numbers:
            number = numbers.readline().strip()
        if not number:
            raise RuntimeError(f"Xvfb did not start (exit {self.process.wait(5)})")
        self.display = f":{number}"

    def run(self, *args: str) -> str:
        done = subprocess.run(
            args, env={**os.environ, "DISPLAY": self.display}, capture_output=True, timeout=20
        )
        if done.returncode != 0:
            alive = (
                "" if self.process.poll() is None else f" (Xvfb exited {self.process.returncode})"
            )
            raise RuntimeError(f"{' '.join(args)}: {done.stderr.decode(errors='replace')}{alive}")
        return done.stdout.decode()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Window:
    """One top-level window, found by its WM_CLASS."""

    def __init__(self, x: Xvfb, wm_class: str, timeout: float = 15.0) -> None:
        self.x = x
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.id = int(x.run("xdotool", "search", "--classname", wm_class).split()[0])
                break
            except (RuntimeError, IndexError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no window of class {wm_class}") from None
                time.sleep(0.05)

    def size(self) -> tuple[int, int]:
        out = self.x.run("xdotool", "getwindowgeometry", "--shell", str(self.id))
        values = dict(line.split("=", 1) for line in out.split())
        return int(values["WIDTH"]), int(values["HEIGHT"])

    def click(self, pos: tuple[int, int], hold_ms: int = 0) -> None:
        """Press and release the left button at `pos` (window pixels)."""
        at = ("mousemove", "--window", str(self.id), str(pos[0]), str(pos[1]))
        if hold_ms:
            self.x.run(
                "xdotool", *at, "mousedown", "1", "sleep", str(hold_ms / 1000), "mouseup", "1"
            )
        else:
            self.x.run("xdotool", *at, "click", "1")

    def key(self, name: str) -> None:
        self.x.run("xdotool", "key", "--window", str(self.id), name)

    def resize(self, width: int, height: int) -> None:
        self.x.run("xdotool", "windowsize", "--sync", str(self.id), str(width), str(height))

    def screenshot(self) -> Image.Image:
        png = subprocess.run(
            ["import", "-window", str(self.id), "png:-"],
            env={**os.environ, "DISPLAY": self.x.display},
            capture_output=True,
            check=True,
            timeout=20,
        ).stdout
        return Image.open(io.BytesIO(png)).convert("RGB")

    def close(self) -> None:
        """What a window manager's close button does: a WM_DELETE_WINDOW client
        message (ICCCM 4.2.8.1), sent with Xlib since xdotool has none."""
        xlib = ctypes.CDLL(ctypes.util.find_library("X11"))
        xlib.XOpenDisplay.restype = ctypes.c_void_p
        xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        xlib.XInternAtom.restype = ctypes.c_ulong
        xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        xlib.XSendEvent.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.c_long,
            ctypes.c_void_p,
        ]
        xlib.XFlush.argtypes = xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        display = xlib.XOpenDisplay(self.x.display.encode())
        if not display:
            raise RuntimeError(f"cannot open display {self.x.display}")
        event = XEvent()
        event.xclient.type = CLIENT_MESSAGE
        event.xclient.window = self.id
        event.xclient.message_type = xlib.XInternAtom(display, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = xlib.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
        xlib.XSendEvent(display, self.id, 0, 0, ctypes.byref(event))
        xlib.XFlush(display)
        xlib.XCloseDisplay(display)


class XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", XClientMessageEvent), ("pad", ctypes.c_long * 24)]


def differing_share(image: Image.Image, golden: Image.Image) -> float:
    """The share of pixels that differ by more than CLOSE_ENOUGH in any channel."""
    a = np.asarray(image.convert("RGB"), dtype=np.int16)
    b = np.asarray(golden.convert("RGB"), dtype=np.int16)
    return float((np.abs(a - b).max(axis=2) > CLOSE_ENOUGH).mean())


def assert_like_golden(image: Image.Image, golden: Path) -> None:
    """Compare with a golden screenshot, tolerant of font rendering. With
    UPDATE_SCREENSHOTS=1 the golden (a README picture) is written instead."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        image.save(golden, optimize=True)
        return
    assert golden.exists(), f"no golden {golden}: run the test with UPDATE_SCREENSHOTS=1"
    expected = Image.open(golden)
    assert image.size == expected.size, f"{image.size} != golden {expected.size}"
    share = differing_share(image, expected)
    if share > MOSTLY_SAME:
        actual = Path(tempfile.gettempdir()) / f"{golden.stem}.actual.png"
        image.save(actual)
        raise AssertionError(f"{share:.1%} of the pixels differ from {golden} (see {actual})")
