"""The phone's own microphone and speaker inside pjsua's conference bridge.

A call's audio is connected mic → call → speaker. Where the mic and speaker
are depends on the board (`AudioEndpoints`):

- ALSA PCM names (the Pi, the virtual board in a virtual room): `phone.audio`
  runs the card with echo cancellation, as our own bridge port (`[audio]
  backend = "bridge"`, the default) or as pjsua's sound port (`"pjsua"`, where
  pjproject was built with ALSA). A missing or busy device is reported to the
  core (`on_problem`) and retried in the background; calls go on without sound.
  Ring, ringback and busy tones are generated into the speaker.
- Otherwise WAV files (the virtual board in tests): a looping player as the
  mic and a recorder as the speaker, without tones.

Volume moves the board's ALSA mixer when it has one, else the bridge level of
the speaker; mute silences the microphone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from phone.board import AudioEndpoints
from phone.config import AudioBackend, AudioSettings
from phone.sip.lifetime import delete_now

log = logging.getLogger(__name__)

VOLUME_DEFAULT = 80  # unity gain on the bridge
ProblemListener = Callable[[str | None], None]


class PhoneAudio:
    """The phone's mic and speaker in pjsua's bridge, and their lifetimes.

    It owns, and `close()` ends in this order (the SIP endpoint calls it after
    hanging up every call and before `libDestroy`, which none of them may
    outlive):

    1. the call media it connected (`connect`): borrowed from pjsua's calls,
       only forgotten here; pjsua removes them with the calls;
    2. the sound (`AlsaSound`: its audio thread, then its bridge port, then
       its echo canceller, see `AlsaSound.destroy`; or pjsua's own sound
       device, given back to the null device);
    3. the WAV player and recorder, deleted there and then (the recorder
       finalises its WAV) whoever else still holds them (`phone.sip.lifetime`),
       and the references it lent out as `mic`/`speaker`/`mixer`.
    """

    def __init__(
        self,
        pj: Any,
        endpoints: AudioEndpoints,
        settings: AudioSettings,
        on_problem: ProblemListener,
    ) -> None:
        self.pj = pj
        self.endpoints = endpoints
        self.settings = settings
        self.on_problem = on_problem
        self.mic: Any = None
        self.speaker: Any = None
        self.sound: Any = None  # phone.audio's AlsaSound or PjsuaSound
        self.mixer: Any = None  # phone.audio.volume.Volume, when the board has a mixer
        self._bridge_volume = VOLUME_DEFAULT
        self._muted = False
        self._connected: dict[int, Any] = {}  # bridge port id -> call media
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: Callable[[], None] | None = None
        self._wav_ports: list[Any] = []  # the WAV player and recorder it made

    @property
    def alsa(self) -> bool:
        return bool(self.endpoints.capture_pcm and self.endpoints.playback_pcm)

    def open(self, endpoint: Any) -> None:
        self._loop = asyncio.get_running_loop()
        if self.alsa:
            self._open_sound(endpoint)
        else:
            self._open_wav()
        self._apply_levels()

    def _open_wav(self) -> None:
        pj = self.pj
        if self.endpoints.mic_wav:
            player = pj.AudioMediaPlayer()
            player.createPlayer(self.endpoints.mic_wav)  # loops
            self.mic = player
            self._wav_ports.append(player)
        if self.endpoints.speaker_wav:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(self.endpoints.speaker_wav)
            self.speaker = recorder
            self._wav_ports.append(recorder)

    def _open_sound(self, endpoint: Any) -> None:
        from phone.audio.alsa import AlsaSound, AudioConfig, AudioDeviceError
        from phone.audio.echo import Aggressiveness, EchoAlgorithm, EchoConfig

        s = self.settings
        echo = EchoConfig(
            algorithm=EchoAlgorithm(s.echo),
            delay_ms=s.delay_ms,
            tail_ms=s.tail_ms,
            aggressiveness=Aggressiveness(s.aggressiveness),
            noise_suppressor=s.noise_suppressor,
        )
        capture, playback = self.endpoints.capture_pcm or "", self.endpoints.playback_pcm or ""
        if s.backend is AudioBackend.PJSUA:
            from phone.audio.pjsua_sound import PjsuaSound, PjsuaSoundConfig

            sound: Any = PjsuaSound(endpoint, PjsuaSoundConfig(capture, playback, echo))
            try:
                sound.open()
            except AudioDeviceError as exc:
                log.error("no sound: %s", exc)
                self.on_problem(f"Audio: {exc.reason}")
                return
            self._release = sound.close
        else:
            sound = AlsaSound(
                AudioConfig(capture, playback, frame_ms=s.frame_ms, echo=echo),
                on_state=self._state_from_audio_thread,
            )
            sound.start()  # opens now or keeps retrying; the port works either way
            self._release = sound.destroy
        self.sound = sound
        self.mic, self.speaker = sound.capture_media, sound.playback_media
        if self.endpoints.mixer:
            from phone.audio.volume import Volume

            try:
                self.mixer = Volume(
                    self.endpoints.mixer_device, self.endpoints.mixer, s.volume_step, sound
                )
            except AudioDeviceError as exc:
                log.warning("no mixer, volume on the bridge instead: %s", exc)

    def _state_from_audio_thread(self, state: Any, error: Exception | None) -> None:
        """AlsaSound reports on its own thread: hand the news to the loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._report, state.value, error)

    def _report(self, state: str, error: Exception | None) -> None:
        if error is not None:
            log.error("sound device: %s (retrying)", error)
            self.on_problem(f"Audio: {getattr(error, 'reason', error)}")
        elif state == "running":
            log.info("sound device running")
            self.on_problem(None)

    def stats(self) -> dict[str, Any] | None:
        """The ALSA bridge's counters (`AudioStats`) as plain data for the control
        interface; None on WAV files or pjsua's sound port, which keep none."""
        if self.sound is None or not hasattr(self.sound, "stats"):
            return None
        stats = self.sound.stats()
        return {**asdict(stats), "drift_corrections": stats.drift_corrections}

    def close(self) -> None:
        """End what it owns, in the order of the class docstring."""
        self._connected.clear()
        if self._release is not None:
            self._release()
            self._release = None
        for port in self._wav_ports:
            delete_now(port)
        self._wav_ports.clear()
        self.sound = self.mixer = self.mic = self.speaker = None

    # -- calls ----------------------------------------------------------
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

    def play_tone(self, kind: str | None) -> None:
        """Ring, ringback or busy into the speaker (None stops); ALSA bridge only."""
        if self.sound is None or not hasattr(self.sound, "play_tone"):
            return
        from phone.audio.tones import ToneKind, tone

        frames = (
            None
            if kind is None
            else tone(ToneKind(kind), self.settings.tones, self.settings.frame_ms)
        )
        self.sound.play_tone(frames)

    # -- volume and mute ------------------------------------------------
    @property
    def volume(self) -> int:
        return int(self.mixer.level) if self.mixer is not None else self._bridge_volume

    @property
    def muted(self) -> bool:
        return self._muted

    def change_volume(self, steps: int) -> int:
        if self.mixer is not None:
            return int(self.mixer.up() if steps > 0 else self.mixer.down())
        step = self.settings.volume_step
        self._bridge_volume = max(0, min(100, self._bridge_volume + steps * step))
        self._apply_levels()
        return self._bridge_volume

    def toggle_mute(self) -> bool:
        self._muted = not self._muted
        self._apply_levels()
        log.info("microphone %s", "muted" if self._muted else "unmuted")
        return self._muted

    def _apply_levels(self) -> None:
        if self.mixer is not None:
            self.mixer.muted = self._muted
        elif self.sound is not None:
            self.sound.muted = self._muted
        elif self.mic is not None:
            self.mic.adjustRxLevel(0.0 if self._muted else 1.0)
        if self.mixer is None and self.speaker is not None:
            self.speaker.adjustTxLevel(self._bridge_volume / VOLUME_DEFAULT)
