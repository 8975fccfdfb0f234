"""The phone's fronts: one `phone.board.Board` interface, one module per kind of board.

The layering is luma.core's: a bus (`luma.core.interface.serial`), a device on
it (`luma.oled.device.ssd1306`, or `luma.core.device.dummy` with the same API),
and drawing (`luma.core.render.canvas`) that never asks which device it draws
on. Here the core holds a `Board`, draws on `board.display` (always a luma
device, 128x64, mode "1"), sets LEDs by colour and pattern, and receives raw
button edges; it never knows which board it drives.

- `virtual.py`: `VirtualBoard`, all in memory (tests, scripts, the control
  interface); WAV files for sound.
- `rpi.py`: `RpiBoard`, a Raspberry Pi: evdev buttons, kernel LED class,
  an SSD1306/SH1106 panel through luma.oled, ALSA names for sound.
- `emulator.py`: `EmulatorBoard`, the phone's front in a pygame window on a
  desktop (`phone emulator`); the desktop's ALSA default for sound.

These are named in `phone.board_kinds.BUILTIN_BOARDS`; a board installed apart
joins them through the `simplephone.boards` entry-point group, and together
they are the choices of `[board] kind`. Each takes
`(contact_buttons, settings)` and has a `validate_settings` classmethod that
reads its `[board.<kind>]` section with `phone.settings.Table`, so every
problem names its full key (`board.rpi.display.driver`).

Nothing outside `board/` imports evdev, gpiod, luma.oled or pygame, so the core runs
wherever luma.core and Pillow do.
"""
