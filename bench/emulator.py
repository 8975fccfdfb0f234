"""Benchmarks of the desktop emulator's window, on a private Xvfb.

- start → first frame: spawning `phone emulator --config` until its window
  shows the display's text (polled with screenshots; their cost is printed).
- idle CPU of the window's process, against the same phone on the virtual
  board (`phone run`), so the window's own share shows.
- press → INVITE on the wire: a real pointer click (xdotool) on the contact's
  button against the control interface's `press`, alternated in one run, to a
  raw UDP callee that answers 486 (bench/core.py's). The click's figure
  includes starting xdotool, printed on its own.

Run: python bench/emulator.py [--presses 30] [--starts 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import BusyCallee, idle_cpu_percent, machine, pct  # noqa: E402
from board.emulator import TITLE, Layout  # noqa: E402
from phone.demo import free_port  # noqa: E402
from phone.remote import RemotePhone  # noqa: E402
from tests.emulator.phone_window import EmulatorPhone, window_bitmap  # noqa: E402
from tests.emulator.x11 import Window, Xvfb  # noqa: E402
from tests.phones import no_calls, render_config  # noqa: E402

BUTTONS = 4


def first_frame(x: Xvfb, config: Path, log: Path) -> tuple[float, float]:
    """Seconds from spawn to the display's text in the window, and the mean
    time one look (a screenshot) took."""
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "phone", "emulator", "--config", str(config), "--sound", "none"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DISPLAY": x.display},
        )
    try:
        try:
            window = Window(x, TITLE, timeout=30)
        except TimeoutError:
            raise RuntimeError(f"no window:\n{log.read_text()[-2000:]}") from None
        layout = Layout.fit(window.size(), BUTTONS)
        looks, looked = 0, 0.0
        while True:
            before = time.monotonic()
            lit = any(window_bitmap(window.screenshot(), layout))
            looks, looked = looks + 1, looked + time.monotonic() - before
            if lit:
                return time.monotonic() - started, looked / looks
    finally:
        proc.terminate()
        proc.wait(20)


def clicks_and_presses(
    x: Xvfb, workdir: Path, callee: BusyCallee, config: Path, presses: int
) -> tuple[list[float], list[float]]:
    phone = EmulatorPhone(x, workdir, ["--config", str(config), "--sound", "none"], BUTTONS)
    phone.start()
    clicks: list[float] = []
    controls: list[float] = []
    try:
        for i in range(presses):
            sent = time.monotonic()
            if i % 2:
                phone.press("contact-1")
                controls.append(callee.wait(i + 1) - sent)
            else:
                phone.click("contact-1")
                clicks.append(callee.wait(i + 1) - sent)
            phone.wait_for(no_calls, what="hung up")
    finally:
        phone.stop()
    return clicks, controls


def xdotool_start(x: Xvfb, runs: int = 20) -> float:
    took = []
    for _ in range(runs):
        before = time.monotonic()
        x.run("xdotool", "getmouselocation")
        took.append(time.monotonic() - before)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    x = Xvfb()
    callee = BusyCallee()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            config = render_config(
                {"uri": f"sip:alice@127.0.0.1:{free_port()}"},
                [("Busy", f"sip:busy@127.0.0.1:{callee.port}")],
                workdir,
                "alice",
                buttons=BUTTONS,
                # The callee answers no SUBSCRIBE: presence's retransmissions would
                # keep the SIP poll busy and blur the window's share of idle CPU.
                plugins={"presence": {"enabled": False}},
            )
            starts = [first_frame(x, config, workdir / "start.log") for _ in range(args.starts)]
            took = [s for s, _ in starts]
            print(
                f"start -> first frame ({args.starts} starts): median {1000 * statistics.median(took):.0f} ms "
                f"(max {1000 * max(took):.0f}; one screenshot to look: "
                f"{1000 * statistics.mean(look for _, look in starts):.0f} ms)"
            )

            window = EmulatorPhone(
                x, workdir, ["--config", str(config), "--sound", "none"], BUTTONS
            )
            window.start()
            x.run("xdotool", "mousemove", "0", "0")  # the pointer elsewhere: not in use
            time.sleep(3)
            assert window.process is not None
            cpu_window = idle_cpu_percent(window.process.pid)
            window.stop()
            virtual = RemotePhone("virtual", config, workdir, log_level="INFO").start()
            time.sleep(3)
            assert virtual.process is not None
            cpu_virtual = idle_cpu_percent(virtual.process.pid)
            virtual.stop()
            print(
                f"idle CPU, % of a core: emulator window {cpu_window:.1f} %, "
                f"same phone on the virtual board {cpu_virtual:.1f} %"
            )

            clicks, controls = clicks_and_presses(x, workdir, callee, config, args.presses)
            for name, values in (("xdotool click", clicks), ("control press", controls)):
                print(
                    f"press -> INVITE, {name} ({len(values)}): p50 "
                    f"{1000 * statistics.median(values):.1f} ms, p99 {1000 * pct(values, 99):.1f} ms"
                )
            print(f"xdotool's own start and X round trip, median: {1000 * xdotool_start(x):.1f} ms")
    finally:
        x.stop()


if __name__ == "__main__":
    main()
