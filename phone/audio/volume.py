"""Speaker volume on the ALSA mixer, and the microphone mute.

The level is the mixer's own (a hardware control, or a `softvol` control on
boards without one), so it survives a restart of the phone and applies to
tones as well as calls. Mute is done in the bridge (`AlsaSound.muted`: it
sends silence), which works whether or not the board has a capture control.
"""

from __future__ import annotations

import logging
from typing import Protocol

import alsaaudio

from phone.audio.alsa import AudioDeviceError

log = logging.getLogger(__name__)

LEVEL_MIN = 0
LEVEL_MAX = 100


class Mutable(Protocol):
    muted: bool


class Volume:
    """Steps the speaker level between 0 and 100 % and mutes the microphone."""

    def __init__(
        self,
        mixer_device: str = "default",
        control: str = "Master",
        step: int = 10,
        sound: Mutable | None = None,
    ) -> None:
        if not 0 < step <= LEVEL_MAX:
            raise ValueError(f"volume step must be within 1..{LEVEL_MAX}, not {step}")
        self.step = step
        self._sound = sound
        self._muted = False
        try:
            self._mixer = alsaaudio.Mixer(control=control, device=mixer_device)
        except alsaaudio.ALSAAudioError as exc:
            raise AudioDeviceError(f"{mixer_device}:{control}", str(exc)) from exc
        self._name = f"{mixer_device}:{control}"

    @property
    def level(self) -> int:
        """The speaker level in percent (the mean of the control's channels)."""
        channels = self._mixer.getvolume(alsaaudio.PCM_PLAYBACK)
        return round(sum(channels) / len(channels)) if channels else 0

    def set_level(self, level: int) -> int:
        """Set the level, clamped to 0..100; returns the level now set."""
        clamped = max(LEVEL_MIN, min(LEVEL_MAX, level))
        try:
            self._mixer.setvolume(clamped)
        except alsaaudio.ALSAAudioError as exc:
            raise AudioDeviceError(self._name, str(exc)) from exc
        log.info("speaker volume %d%%", clamped)
        return clamped

    def up(self) -> int:
        return self.set_level(self.level + self.step)

    def down(self) -> int:
        return self.set_level(self.level - self.step)

    @property
    def muted(self) -> bool:
        return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        if value == self._muted:
            return
        self._muted = value
        if self._sound is not None:
            self._sound.muted = value
        log.info("microphone %s", "muted" if value else "unmuted")

    def toggle_mute(self) -> bool:
        self.muted = not self._muted
        return self._muted
