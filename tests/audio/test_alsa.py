"""AlsaSound against real ALSA `pulse` PCMs on a private PulseAudio.

A VirtualRoom (on threads here) closes the loop: what the phone plays reaches
the room, and the room's talker reaches the phone's microphone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pjsua2 as pj
import pytest

from phone.audio import alsa
from phone.audio.alsa import AlsaSound, AudioConfig, AudioDeviceError, AudioState
from phone.audio.delay import DelayEstimate
from phone.audio.echo import EchoAlgorithm, EchoConfig
from phone.audio.tones import ToneKind, tone
from phone.audio.volume import Volume
from tests.audio.farend import FarEnd
from tests.audio.rig import wait_idle
from tests.audio.room import EchoPath, Talker, VirtualRoom, level_db, read_wav, to_pcm, write_wav
from tests.peers.pulseaudio import PulseAudioServer

RATE = 16000
NO_AEC = EchoConfig(EchoAlgorithm.NONE)


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def sine(freq: float, seconds: float, level: float = 0.3) -> np.ndarray:
    n = np.arange(int(seconds * RATE))
    return level * 32767 * np.sin(2 * np.pi * freq * n / RATE)


def tone_share(samples: np.ndarray, freq: float) -> float:
    """The share of the signal's power within 20 Hz of `freq`."""
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    total = float(spectrum.sum())
    return float(spectrum[np.abs(freqs - freq) < 20].sum()) / total if total else 0.0


@pytest.fixture
def sound(pj_endpoint: object, pulse: PulseAudioServer) -> Iterator[AlsaSound]:
    snd = AlsaSound(
        AudioConfig(
            capture_pcm=pulse.capture_pcm("mic"),
            playback_pcm=pulse.playback_pcm("spk"),
            echo=NO_AEC,
        )
    )
    yield snd
    snd.destroy()


@pytest.fixture
def room_with_talker(pulse: PulseAudioServer, tmp_path: Path) -> Iterator[VirtualRoom]:
    talker_wav = tmp_path / "talker.wav"
    write_wav(talker_wav, sine(600.0, 30.0))
    room = VirtualRoom(
        pulse.capture_pcm("spk"),
        pulse.playback_pcm("mic"),
        echo=EchoPath(gain_db=-60.0),
        talker=Talker(talker_wav),
        noise_db=-90.0,
        record_dir=tmp_path / "room",
    )
    room.start()
    assert room.wait_running(), room.error
    yield room
    room.stop()


def test_frames_flow_both_ways(
    sound: AlsaSound, room_with_talker: VirtualRoom, far_end: FarEnd, tmp_path: Path
) -> None:
    sound.open()
    assert wait_for(lambda: sound.stats().cycles > 10, 10.0)
    talker = far_end.talker(to_pcm(sine(1000.0, 3.0)))
    listener = far_end.listener()
    talker.startTransmit(sound.port)
    sound.port.startTransmit(listener)
    time.sleep(2.5)
    heard = np.frombuffer(listener.take(), dtype="<i2").astype(np.float64)
    talker.stopTransmit(sound.port)
    sound.port.stopTransmit(listener)
    sound.close()
    room_with_talker.stop()
    played = read_wav(tmp_path / "room" / "played.wav")
    assert tone_share(played[-RATE:], 1000.0) > 0.9  # the far end reached the speaker
    assert tone_share(heard[-RATE:], 600.0) > 0.9  # the room's talker reached the far end
    assert level_db(heard[-RATE:]) > -20
    stats = sound.stats()
    assert stats.state is AudioState.CLOSED
    assert stats.pj_frames > 50 and stats.cycles > 50
    assert not stats.aec


def test_a_stopped_pjmedia_clock_stops_the_card_until_it_starts_again(
    pj_endpoint: Any, sound: AlsaSound, room_with_talker: VirtualRoom, far_end: FarEnd
) -> None:
    """pjsua closes its idle sound device between calls, and its clock with it:
    with no tone either, the card stops (no cycles: no periodic work while
    idle, and no ring overrun), and it runs again as soon as the clock does."""
    sound.open()
    listener = far_end.listener()
    sound.port.startTransmit(listener)
    assert wait_for(lambda: sound.stats().pj_frames > 10 and sound.stats().cycles > 10, 10.0)
    devices = pj_endpoint.audDevManager()
    devices.setNoDev()  # what pjsua's idle close does to the clock
    try:
        assert wait_for(lambda: not sound.stats().streaming, 5.0), sound.stats()
        stopped = sound.stats()
        time.sleep(1.0)  # fifty cycles' worth, were the card running
        idle = sound.stats()
        assert idle.pj_frames == stopped.pj_frames  # the clock did stop
        assert idle.cycles == stopped.cycles and not idle.streaming  # and so did the card
        assert idle.capture.overruns == stopped.capture.overruns
        assert sound.state is AudioState.RUNNING  # the devices are open, only stopped
    finally:
        devices.setNullDev()
    assert wait_for(lambda: sound.stats().streaming, 2.0), sound.stats()
    time.sleep(1.5)
    listener.take()
    time.sleep(1.0)
    heard = np.frombuffer(listener.take(), dtype="<i2").astype(np.float64)
    sound.port.stopTransmit(listener)
    assert tone_share(heard[-RATE // 2 :], 600.0) > 0.9  # the talker, heard again
    assert sound.stats().cycles > idle.cycles + 50
    assert sound.stats().capture.overruns == idle.capture.overruns


def test_mute_sends_silence(
    sound: AlsaSound, room_with_talker: VirtualRoom, far_end: FarEnd
) -> None:
    sound.open()
    listener = far_end.listener()
    sound.port.startTransmit(listener)
    assert wait_for(lambda: sound.stats().cycles > 10, 10.0)
    time.sleep(1.0)
    sound.muted = True
    time.sleep(0.3)  # what was already in the ring
    listener.take()
    time.sleep(1.0)
    muted = np.frombuffer(listener.take(), dtype="<i2")
    sound.muted = False
    time.sleep(0.5)
    listener.take()
    time.sleep(1.0)
    unmuted = np.frombuffer(listener.take(), dtype="<i2").astype(np.float64)
    sound.port.stopTransmit(listener)
    assert len(muted) > RATE // 2 and not muted.any()
    assert tone_share(unmuted, 600.0) > 0.9


def test_a_tone_starts_the_idle_card_and_is_mixed_into_the_speaker(
    sound: AlsaSound, room_with_talker: VirtualRoom, tmp_path: Path
) -> None:
    sound.open()
    wait_idle(sound)  # nothing needed sound: the card stopped
    sound.play_tone(tone(ToneKind.BUSY, "europe"))
    assert wait_for(lambda: sound.stats().streaming, 1.0)
    time.sleep(2.0)
    sound.play_tone(None)
    assert wait_for(lambda: not sound.stats().streaming, 5.0)  # idle again after the tone
    sound.close()
    room_with_talker.stop()
    played = read_wav(tmp_path / "room" / "played.wav")
    end = int(np.flatnonzero(np.abs(played) > 100)[-1])  # the tone's end, before the idle card
    assert tone_share(played[end - int(1.5 * RATE) : end], 425.0) > 0.9


def test_a_tone_gives_the_delay_estimator_no_lag(
    pj_endpoint: object, pulse: PulseAudioServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A steady tone's rises correlate at many lags: a ringback measured 14-18 ms
    where the call's speech then measured 36-48 ms, and the call began with the
    reference 20 ms off the echo. So a tone through a room that echoes it is no
    estimate; the call's far end gives the first."""
    caplog.set_level("DEBUG", logger=alsa.__name__)
    room = VirtualRoom(
        pulse.capture_pcm("spk"),
        pulse.playback_pcm("mic"),
        echo=EchoPath(delay_ms=20, decay_ms=150, gain_db=-8),
        noise_db=-90.0,
        record_dir=tmp_path / "room",
    )
    room.start()
    assert room.wait_running(), room.error
    sound = AlsaSound(
        AudioConfig(pulse.capture_pcm("mic"), pulse.playback_pcm("spk"), echo=EchoConfig())
    )
    try:
        sound.open()
        sound.play_tone(tone(ToneKind.BUSY, "europe"))  # 0.5 s on, 0.5 s off
        time.sleep(4.0)  # two seconds of tone: two estimates' worth of sound
        sound.play_tone(None)
        stats = sound.stats()
    finally:
        sound.destroy()
        room.stop()
    assert stats.aec and stats.cycles > 150, stats
    assert not [r for r in caplog.records if "echo delay" in r.getMessage()]


def test_volume_clamps_between_0_and_100_and_mutes_the_bridge(
    sound: AlsaSound, pulse: PulseAudioServer
) -> None:
    volume = Volume(pulse.control("spk"), step=10, sound=sound)
    assert volume.set_level(95) == 95
    assert volume.up() == 100
    assert volume.up() == 100
    assert volume.level == 100
    assert volume.set_level(5) == 5
    assert volume.down() == 0
    assert volume.down() == 0
    assert volume.level == 0
    assert volume.set_level(250) == 100
    assert volume.toggle_mute() is True
    assert sound.muted
    volume.muted = False
    assert not sound.muted


def test_a_missing_mixer_is_a_clear_error(pulse: PulseAudioServer) -> None:
    with pytest.raises(AudioDeviceError, match="nosuch_ctl"):
        Volume("nosuch_ctl")


def test_missing_device_is_named_then_recovered_when_it_appears(
    pj_endpoint: object, pulse_late: PulseAudioServer
) -> None:
    states: list[AudioState] = []
    changed = threading.Event()

    def on_state(state: AudioState, error: AudioDeviceError | None) -> None:
        states.append(state)
        changed.set()

    config = AudioConfig(
        capture_pcm=pulse_late.capture_pcm("late"),
        playback_pcm=pulse_late.playback_pcm("late"),
        echo=NO_AEC,
        retry_s=0.2,
    )
    snd = AlsaSound(config, on_state=on_state)
    try:
        with pytest.raises(AudioDeviceError) as caught:
            snd.open()
        assert caught.value.device == "late_rec"
        assert "late_rec" in str(caught.value)
        assert snd.state is AudioState.WAITING_FOR_DEVICE

        snd.start()  # keeps trying in the background
        time.sleep(0.5)
        assert snd.state is AudioState.WAITING_FOR_DEVICE
        pulse_late.start()
        assert wait_for(lambda: snd.stats().cycles > 5, 15.0), snd.stats()
        assert states[0] is AudioState.WAITING_FOR_DEVICE
        assert AudioState.RUNNING in states

        pulse_late.stop()  # unplugged while running
        assert wait_for(lambda: snd.state is AudioState.WAITING_FOR_DEVICE, 10.0)
        assert snd.last_error is not None and snd.last_error.device in ("late_rec", "late_play")
    finally:
        snd.destroy()


def test_speaker_frames_are_copied_without_walking_swig(pj_endpoint: object) -> None:
    assert alsa._read_byte_vector is not bytes  # the layout check passed on this build
    payload = bytes(range(256)) * 2 + bytes(range(128))
    assert alsa._read_byte_vector(pj.ByteVector(payload)) == payload


def test_destroy_frees_nothing_a_stuck_audio_thread_still_uses(
    pj_endpoint: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    opening = threading.Event()
    release = threading.Event()

    def stuck_open(config: AudioConfig, samples: int) -> None:
        opening.set()
        release.wait(10)  # a device open that hangs in the driver
        raise AudioDeviceError(config.capture_pcm, "gave up")

    monkeypatch.setattr(alsa, "_Duplex", stuck_open)
    monkeypatch.setattr(alsa, "STOP_TIMEOUT_S", 0.2)
    snd = AlsaSound(AudioConfig("stuck_rec", "stuck_play", echo=EchoConfig(), retry_s=0.1))
    assert snd.echo.active
    snd.start()
    assert opening.wait(5)
    snd.destroy()
    assert snd.port is None  # the bridge port is ended either way
    assert snd.echo.active, "the canceller was freed under a thread that may still use it"
    assert "did not stop" in caplog.text
    release.set()
    snd.destroy()  # the thread has gone now: the canceller is freed
    assert not snd.echo.active


class Refusing:
    """`os.sched_setscheduler` where real-time priority is not permitted."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def __call__(self, tid: int, policy: int, param: Any) -> None:
        self.asked.append(tid)
        raise PermissionError(1, "Operation not permitted")


def test_a_refused_real_time_priority_is_asked_for_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each call brings pjmedia a new clock thread, and ALSA's pulse plugin a
    thread per PCM: once refused, no thread is asked for again, and one
    warning says so. (A decision object of the test's own, with an injected
    setter: no thread of the session's pjmedia can ask through it.)"""
    setter = Refusing()
    priority = alsa.RealtimePriority(setter)
    for tid in (0, 101, 102, 0):  # audio thread, two plugin threads, a clock thread
        priority.request(10, "thread", tid)
    assert setter.asked == [0]
    assert priority.refused is not None
    assert caplog.text.count("stays at normal priority") == 1


def test_real_time_priority_is_asked_for_every_thread_while_granted() -> None:
    asked: list[tuple[int, int, int]] = []
    priority = alsa.RealtimePriority(
        lambda tid, policy, param: asked.append((tid, policy, param.sched_priority))
    )
    priority.request(10, "audio thread")
    priority.request(10, "ALSA plugin thread 7", 7)
    priority.request(None, "never asked")
    assert asked == [(0, os.SCHED_FIFO, 10), (7, os.SCHED_FIFO, 10)]
    assert priority.refused is None


def test_the_first_estimate_after_the_card_restarts_is_relearned_even_where_it_agrees() -> None:
    """The lag carried across a restart is a guess (what ALSA's offset does not
    show moves with the new streams), and the kept canceller was weak in the
    call's first second: the first estimate on a restarted card makes the
    canceller relearn. After an xrun, an estimate that agrees moves nothing."""
    lag = alsa.RATE * 70 // 1000
    for restarted, relearns in ((True, True), (False, False)):
        alignment = alsa._Alignment(residual=lag - 480, restarted=restarted)
        for _ in range(alsa.ALIGN_WINDOW):
            alignment.reading(480)
        agreeing = DelayEstimate(lag=lag + alsa.RATE * 4 // 1000, correlation=0.5)
        assert alignment.measured(agreeing) is relearns
        assert alignment.measured(agreeing) is False  # taken once per stream
