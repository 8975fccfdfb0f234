"""RpiBoard's buttons: evdev edges in, ButtonEvents out, through a pipe-backed device."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from evdev import ecodes
from luma.core.interface.serial import noop

from board.rpi import RpiBoard
from phone.board import ButtonEvent

from .fake_input import InputBench

GPIO_KEYS = "/dev/input/event0"
KEYPAD = "/dev/input/event1"


def board_for(bench: InputBench, inputs: list[str], tmp_path: Path) -> RpiBoard:
    settings = {
        "inputs": inputs,
        "keys": {"KEY_F1": "contact-1", "KEY_F2": "contact-2", "KEY_ENTER": "answer"},
        "leds_root": str(tmp_path),
    }
    return RpiBoard(
        4,
        settings,
        open_input=bench.open,
        list_inputs=bench.paths,
        open_bus=lambda display: noop(),
        reopen_delays=(0.01, 0.04),
    )


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 10))


def edges(events: list[ButtonEvent]) -> list[tuple[str, bool]]:
    return [(e.button, e.down) for e in events]


def test_down_and_up_are_delivered_and_autorepeat_is_not(tmp_path: Path) -> None:
    bench = InputBench()
    device = bench.plug(GPIO_KEYS, "gpio_keys")
    board = board_for(bench, [GPIO_KEYS], tmp_path)
    events: list[ButtonEvent] = []

    async def scenario() -> None:
        await board.start(events.append)
        await until(lambda: device.grabbed)
        device.key(ecodes.KEY_F1, 1)
        device.key(ecodes.KEY_F1, 2)
        device.key(ecodes.KEY_F1, 2)
        device.key(ecodes.KEY_A, 1)  # not mapped
        device.key(ecodes.KEY_F1, 0)
        device.key(ecodes.KEY_ENTER, 1)
        await until(lambda: len(events) == 3)
        await asyncio.sleep(0.05)
        await board.close()

    run(scenario)
    assert edges(events) == [("contact-1", True), ("contact-1", False), ("answer", True)]
    assert events[0].at <= events[1].at
    assert device.closed


def test_device_found_by_name_and_others_left_closed(tmp_path: Path) -> None:
    bench = InputBench()
    gpio = bench.plug(GPIO_KEYS, "gpio_keys")
    keypad = bench.plug(KEYPAD, "USB Keypad")
    board = board_for(bench, ["USB Keypad"], tmp_path)
    events: list[ButtonEvent] = []

    async def scenario() -> None:
        await board.start(events.append)
        await until(lambda: keypad.grabbed)
        keypad.key(ecodes.KEY_F2, 1)
        await until(lambda: len(events) == 1)
        await board.close()

    run(scenario)
    assert edges(events) == [("contact-2", True)]
    assert gpio.closed and not gpio.grabbed


def test_lost_device_releases_held_keys_and_is_reopened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bench = InputBench()
    first = bench.plug(KEYPAD, "USB Keypad")
    board = board_for(bench, [KEYPAD], tmp_path)
    events: list[ButtonEvent] = []
    caplog.set_level(logging.INFO, logger="board.rpi")

    async def scenario() -> None:
        await board.start(events.append)
        await until(lambda: first.grabbed)
        first.key(ecodes.KEY_F2, 1)
        await until(lambda: len(events) == 1)
        bench.unplug(KEYPAD)
        await until(lambda: len(events) == 2)
        await asyncio.sleep(0.2)  # several reopen attempts while it is gone
        second = bench.plug(KEYPAD, "USB Keypad")
        await until(lambda: second.grabbed)
        second.key(ecodes.KEY_F1, 1)
        await until(lambda: len(events) == 3)
        await board.close()

    run(scenario)
    assert edges(events) == [("contact-2", True), ("contact-2", False), ("contact-1", True)]
    assert first.closed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "lost" in warnings[0] and "No such device" in warnings[0]
    opened = [r for r in caplog.records if r.getMessage().startswith("reading buttons")]
    assert len(opened) == 2


def test_absent_or_busy_device_is_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bench = InputBench()
    board = board_for(bench, [GPIO_KEYS, "USB Keypad"], tmp_path)
    events: list[ButtonEvent] = []
    caplog.set_level(logging.WARNING, logger="board.rpi")

    async def scenario() -> None:
        await board.start(events.append)
        await asyncio.sleep(0.1)
        keypad = bench.plug(KEYPAD, "USB Keypad")
        bench.plug(GPIO_KEYS, "gpio_keys")
        bench.held_elsewhere.add(GPIO_KEYS)  # another process has grabbed it
        await until(lambda: keypad.grabbed)
        keypad.key(ecodes.KEY_ENTER, 1)
        await until(lambda: len(events) == 1)
        await asyncio.sleep(0.1)
        bench.held_elsewhere.clear()
        await until(lambda: bench.present[GPIO_KEYS].grabbed)
        bench.present[GPIO_KEYS].key(ecodes.KEY_F1, 1)
        await until(lambda: len(events) == 2)
        await board.close()

    run(scenario)
    assert edges(events) == [("answer", True), ("contact-1", True)]
    warned = sorted(r.getMessage().split()[1] for r in caplog.records)
    assert warned == ["/dev/input/event0", "USB"]  # once per input, however many retries


def test_close_stops_reading(tmp_path: Path) -> None:
    bench = InputBench()
    device = bench.plug(GPIO_KEYS, "gpio_keys")
    board = board_for(bench, [GPIO_KEYS], tmp_path)
    events: list[ButtonEvent] = []

    async def scenario() -> None:
        await board.start(events.append)
        await until(lambda: device.grabbed)
        await board.close()
        assert device.closed
        await asyncio.sleep(0.05)

    run(scenario)
    assert events == []


def test_a_failing_handler_costs_one_edge_not_the_buttons(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bench = InputBench()
    device = bench.plug(GPIO_KEYS, "gpio_keys")
    board = board_for(bench, [GPIO_KEYS], tmp_path)
    events: list[ButtonEvent] = []

    def handler(event: ButtonEvent) -> None:
        events.append(event)
        if len(events) == 1:
            raise RuntimeError("core bug")

    async def scenario() -> None:
        await board.start(handler)
        await until(lambda: device.grabbed)
        device.key(ecodes.KEY_F1, 1)
        device.key(ecodes.KEY_F1, 0)
        await until(lambda: len(events) == 2)
        await board.close()

    run(scenario)
    assert edges(events) == [("contact-1", True), ("contact-1", False)]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == ["button handler failed on contact-1 down"]
