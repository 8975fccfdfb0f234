"""RpiBoard's LEDs on GPIO pins through gpiozero, on its MockFactory pins
(as GPIOZERO_PIN_FACTORY=mock would give): this machine has no GPIO."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from luma.core.interface.serial import noop

from board.rpi import RpiBoard
from phone.board import Led, LedColor, LedPattern
from phone.config import ConfigError

gpiozero = pytest.importorskip("gpiozero")  # optional: only boards with LEDs on pins need it
from gpiozero import LED  # noqa: E402
from gpiozero.pins.mock import MockFactory  # noqa: E402


@pytest.fixture
def mock_pins() -> Iterator[Any]:
    """gpiozero's MockFactory: pins that record their states (as GPIOZERO_PIN_FACTORY=mock)."""
    gpiozero.Device.pin_factory = MockFactory()
    yield gpiozero.Device.pin_factory
    gpiozero.Device.pin_factory.close()
    gpiozero.Device.pin_factory = None


def test_leds_on_gpio_pins(mock_pins: Any) -> None:
    settings = {"leds": {"contact-1": {"green": 17, "red": 27}}}
    board = RpiBoard(2, settings, open_bus=lambda d: noop())
    green, red = mock_pins.pin(17), mock_pins.pin(27)

    async def lifecycle() -> list[tuple[float, bool]]:
        await board.start(lambda event: None)
        board.set_led("contact-1", Led(LedColor.AMBER, LedPattern.STEADY))
        assert (green.state, red.state) == (True, True)
        board.set_led("contact-1", Led(LedColor.RED, LedPattern.FAST))
        await asyncio.sleep(0.6)
        assert green.state is False
        # MockPin keeps each change with the time since the one before it.
        changes = [(s.timestamp, s.state) for s in red.states]
        await board.close()
        assert (green.state, red.state) == (False, False)
        return changes

    changes = asyncio.run(lifecycle())
    for pin in (17, 27):  # released: the pins can be claimed again
        LED(pin).close()
    blinking = changes[-4:]  # 0.6 s of 4 Hz blinking: well over 4 changes
    assert [on for _, on in blinking] in ([True, False] * 2, [False, True] * 2)
    # 125 ms each way, from gpiozero's thread: allow scheduling slack
    assert all(0.08 < delta < 0.3 for delta, _ in blinking), blinking


def test_gpio_pin_in_use_stops_start(mock_pins: Any) -> None:
    holder = LED(22)
    settings = {"leds": {"contact-1": {"green": 17}, "contact-2": {"red": 22}}}
    board = RpiBoard(2, settings, open_bus=lambda d: noop())
    with pytest.raises(ConfigError) as caught:
        asyncio.run(board.start(lambda event: None))
    assert caught.value.key == "board.rpi.leds.contact-2.red"
    assert "cannot use GPIO22" in str(caught.value)
    LED(17).close()  # what the failed start had claimed was given back
    holder.close()
