"""The virtual board: a phone front that lives in memory, for tests and scripts.

Deterministic and driven from outside: the control interface injects button
edges (`inject`), reads the LEDs (`led`) and the screen (`display`, a
`luma.core.device.dummy` that keeps the last frame as a PIL image), and takes
screenshots. Sound goes to and from WAV files instead of a card.

Settings (`[board.virtual]`, all optional)::

    mic = "alice-says-hello.wav"   # 16-bit mono WAV played as the microphone; silence if absent
    speaker = "heard.wav"          # where what the phone plays is recorded; discarded if absent
    capture_pcm = "default"        # ALSA names, for running the virtual board on real sound
    playback_pcm = "default"
    mixer = "Master"               # the volume control, on the ALSA control device below
    mixer_device = "default"
"""

from __future__ import annotations

import logging
import os
import wave
from pathlib import Path
from typing import Any

from luma.core.device import dummy

from phone.board import SCREEN_HEIGHT, SCREEN_WIDTH, AudioEndpoints, Board, Led
from phone.settings import ConfigError, Table, describe_value

log = logging.getLogger(__name__)

SCREENSHOT_SCALE = 4
SECTION = "board.virtual"


class VirtualBoard(Board):
    """Contact buttons, function buttons and a 128x64 screen, all in memory."""

    kind = "virtual"

    def __init__(self, contact_buttons: int, settings: dict[str, Any] | None = None) -> None:
        super().__init__(contact_buttons, self.validate_settings(settings or {}))
        self._display = dummy(width=SCREEN_WIDTH, height=SCREEN_HEIGHT, mode="1")

    @classmethod
    def validate_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """Check `[board.virtual]`; paths come back with `~` expanded."""
        section = Table(SECTION, settings)
        normalised: dict[str, Any] = {}
        mic = section.text("mic")
        if mic is not None:
            normalised["mic"] = _check_mic(section.key("mic"), Path(mic).expanduser())
        speaker = section.text("speaker")
        if speaker is not None:
            normalised["speaker"] = _check_speaker(
                section.key("speaker"), Path(speaker).expanduser()
            )
        for name in ("capture_pcm", "playback_pcm", "mixer", "mixer_device"):
            value = section.text(name)
            if value is not None:
                normalised[name] = value
        section.finish()
        return normalised

    def _drive_led(self, button: str, led: Led) -> None:
        log.debug("LED %s: %s %s", button, led.color.value, led.pattern.value)

    @property
    def display(self) -> dummy:
        return self._display

    @property
    def audio(self) -> AudioEndpoints:
        return AudioEndpoints(
            mic_wav=self.settings.get("mic"),
            speaker_wav=self.settings.get("speaker"),
            capture_pcm=self.settings.get("capture_pcm"),
            playback_pcm=self.settings.get("playback_pcm"),
            mixer=self.settings.get("mixer"),
            mixer_device=self.settings.get("mixer_device", "default"),
        )


def _check_mic(key: str, path: Path) -> str:
    """The microphone file must be a readable 16-bit mono PCM WAV (any rate):
    what pjmedia's WAV player accepts without conversion surprises."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width = wav.getnchannels(), wav.getsampwidth()
    except FileNotFoundError:
        raise ConfigError(key, f"no such file: {describe_value(str(path))}") from None
    except OSError as e:
        raise ConfigError(key, f"cannot read {describe_value(str(path))}: {e.strerror}") from None
    except (wave.Error, EOFError) as e:
        raise ConfigError(
            key, f"not a PCM WAV file: {describe_value(str(path))} ({str(e) or 'truncated'})"
        ) from None
    if width != 2:
        raise ConfigError(key, f"must be 16-bit, {describe_value(str(path))} is {8 * width}-bit")
    if channels != 1:
        raise ConfigError(key, f"must be mono, {describe_value(str(path))} has {channels} channels")
    return str(path)


def _check_speaker(key: str, path: Path) -> str:
    """The speaker file is written at call time, so check now that it can be."""
    if path.is_dir():
        raise ConfigError(key, f"is a directory, not a file: {describe_value(str(path))}")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(key, f"directory does not exist: {describe_value(str(folder))}")
    if not os.access(folder, os.W_OK):
        raise ConfigError(key, f"directory is not writable: {describe_value(str(folder))}")
    return str(path)
