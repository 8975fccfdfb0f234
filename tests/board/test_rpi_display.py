"""RpiBoard's panel: driver choice and set-up over a bus, and what happens without one."""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import pytest
from luma.core.interface.serial import noop
from luma.core.render import canvas
from luma.oled.device import sh1106, ssd1306

from board.rpi import RpiBoard, open_panel, panel_bus
from phone.config import ConfigError

CONTRAST = 0x81  # SSD1306/SH1106 "set contrast control", followed by the level


class RecordingBus:
    """A luma serial interface that keeps what the driver sends instead of sending it."""

    def __init__(self) -> None:
        self.commands: list[tuple[int, ...]] = []
        self.data_bytes = 0

    def command(self, *cmd: int) -> None:
        self.commands.append(cmd)

    def data(self, data: list[int]) -> None:
        self.data_bytes += len(data)

    def cleanup(self) -> None:
        pass


class SilentBus(RecordingBus):
    """Nothing at the address: an I2C write then fails with EREMOTEIO, as smbus2 reports."""

    def command(self, *cmd: int) -> None:
        raise OSError(errno.EREMOTEIO, "Remote I/O error")


def display_settings(**changes: Any) -> dict[str, Any]:
    return RpiBoard.validate_settings({"display": changes})["display"]


@pytest.mark.parametrize(("driver", "kind"), [("ssd1306", ssd1306), ("sh1106", sh1106)])
def test_driver_is_chosen_by_name(driver: str, kind: type) -> None:
    bus = RecordingBus()
    panel = open_panel(display_settings(driver=driver), bus)
    assert type(panel) is kind
    assert (panel.width, panel.height, panel.mode) == (128, 64, "1")
    assert bus.commands  # the driver initialised the panel over the bus


def test_contrast_is_set_after_the_driver_defaults() -> None:
    plain, dimmed = RecordingBus(), RecordingBus()
    open_panel(display_settings(), plain)
    open_panel(display_settings(contrast=40), dimmed)
    assert dimmed.commands == [*plain.commands, (CONTRAST, 40)]


def test_rotated_panel_stays_128x64() -> None:
    bus = RecordingBus()
    panel = open_panel(display_settings(rotate=180), bus)
    assert panel.rotate == 2
    assert (panel.width, panel.height) == (128, 64)
    before = bus.data_bytes
    with canvas(panel) as draw:
        draw.point((0, 0), fill="white")
    assert bus.data_bytes - before == 128 * 64 // 8  # one frame, a bit per pixel


def test_panel_not_answering_names_the_address() -> None:
    with pytest.raises(ConfigError) as caught:
        open_panel(display_settings(address=0x3D), SilentBus())
    assert caught.value.key == "board.rpi.display.address"
    assert "no ssd1306 panel answers at address 0x3d" in str(caught.value)


def test_missing_i2c_bus_names_the_port() -> None:
    with pytest.raises(ConfigError) as caught:
        panel_bus(display_settings(port=250))  # this machine has no /dev/i2c-*
    assert caught.value.key == "board.rpi.display.port"
    assert "no i2c bus 250" in str(caught.value)
    assert "i2c-dev" in str(caught.value)


def test_unusable_spi_bus_names_the_port() -> None:
    with pytest.raises(ConfigError) as caught:
        # Here there is no GPIO library; on a Pi there is no SPI bus 250.
        panel_bus(display_settings(bus="spi", port=250))
    assert caught.value.key == "board.rpi.display.port"
    assert "spi bus 250" in str(caught.value)


def test_panel_opens_on_first_use_and_start_fails_without_a_bus() -> None:
    opened: list[dict[str, Any]] = []

    def open_bus(display: dict[str, Any]) -> Any:
        opened.append(display)
        return noop()

    board = RpiBoard(2, {"display": {"driver": "sh1106"}}, open_bus=open_bus)
    assert opened == []
    assert isinstance(board.display, sh1106)
    assert board.display is board.display and len(opened) == 1

    absent = RpiBoard(2, {"display": {"port": 250}})  # the real bus opener
    with pytest.raises(ConfigError, match=r"^board\.rpi\.display\.port: no i2c bus 250"):
        asyncio.run(absent.start(lambda event: None))
