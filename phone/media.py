"""The phone's own microphone and speaker inside pjsua's conference bridge.

A call's audio is connected mic → call → speaker. Where the mic and speaker
are depends on the board (`AudioEndpoints`): WAV files on the virtual board
(a looping player and a recorder), later ALSA through a bridge port. Volume
and mute are bridge levels on those two ports, so they work on every board;
a board with a mixer also moves its mixer.
"""

from __future__ import annotations

import logging
from typing import Any

from phone.board import AudioEndpoints

log = logging.getLogger(__name__)

VOLUME_STEP = 10
VOLUME_DEFAULT = 80  # unity gain


class PhoneAudio:
    def __init__(self, pj: Any, endpoints: AudioEndpoints) -> None:
        self.pj = pj
        self.endpoints = endpoints
        self.mic: Any = None
        self.speaker: Any = None
        self.volume = VOLUME_DEFAULT
        self.muted = False
        self._connected: dict[int, Any] = {}  # bridge port id -> call media

    def open(self) -> None:
        pj = self.pj
        if self.endpoints.mic_wav:
            player = pj.AudioMediaPlayer()
            player.createPlayer(self.endpoints.mic_wav)  # loops
            self.mic = player
        if self.endpoints.speaker_wav:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(self.endpoints.speaker_wav)
            self.speaker = recorder
        self._apply_levels()

    def close(self) -> None:
        """Drop the bridge ports; deleting the recorder finalises its WAV."""
        self._connected.clear()
        self.mic = None
        self.speaker = None

    def connect(self, call_media: Any) -> int:
        """Connect a call's audio stream; returns its bridge port id."""
        port = int(call_media.getPortId())
        if port in self._connected:
            return port
        if self.mic is not None:
            self.mic.startTransmit(call_media)
        if self.speaker is not None:
            call_media.startTransmit(self.speaker)
        self._connected[port] = call_media
        return port

    def forget(self, port: int) -> None:
        """The call ended: pjsua removed its port and with it the connections."""
        self._connected.pop(port, None)

    def change_volume(self, steps: int) -> int:
        self.volume = max(0, min(100, self.volume + steps * VOLUME_STEP))
        self._apply_levels()
        return self.volume

    def toggle_mute(self) -> bool:
        self.muted = not self.muted
        self._apply_levels()
        log.info("microphone %s", "muted" if self.muted else "unmuted")
        return self.muted

    def _apply_levels(self) -> None:
        if self.mic is not None:
            self.mic.adjustRxLevel(0.0 if self.muted else 1.0)
        if self.speaker is not None:
            self.speaker.adjustTxLevel(self.volume / VOLUME_DEFAULT)
