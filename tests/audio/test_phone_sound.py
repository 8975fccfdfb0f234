"""A phone on ALSA devices (PulseAudio null sinks): tones, a call both ways,
volume on the mixer, and a sound device that is missing at start."""

from __future__ import annotations

import threading
import time
from typing import Any

import alsaaudio
import numpy as np
import pytest

from tests.peers import pulseaudio
from tests.peers.ports import free_port
from tests.phones import PhoneFactory, has_call, no_calls, phones, strongest_frequency

__all__ = ["phones"]

RATE = 16000
PERIOD = 320  # 20 ms


def alsa_board(
    server: pulseaudio.PulseAudioServer, mic: str = "mic", spk: str = "spk"
) -> dict[str, Any]:
    """Board settings for a phone on the sinks of `server` (the session's
    PulseAudio from tests/audio/conftest.py: ALSA reads its config once per
    process, so every test shares those PCM names)."""
    return {
        "capture_pcm": server.capture_pcm(mic),
        "playback_pcm": server.playback_pcm(spk),
        "mixer": "Master",
        "mixer_device": server.control(spk),
    }


class Line:
    """The test's own end of the sinks: it talks into the phone's mic and
    listens to the phone's speaker, through ALSA like the phone.

    Each direction runs on its own thread, so a stall of one stream cannot
    delay what the other records. (On one thread, a read per write, the talk
    stream's start, which a PulseAudio null sink holds for up to its 2 s idle
    block, left the listening stream 1.6 s of backlog that it then read a
    period per period for good: the line heard the speaker 1.7 s late.)
    """

    def __init__(self, server: pulseaudio.PulseAudioServer, talk_hz: float) -> None:
        self.recorded: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._talk, args=(server.playback_pcm("mic"), talk_hz)),
            threading.Thread(target=self._listen, args=(server.capture_pcm("spk"),)),
        ]
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 10
        while not self.recorded:  # PulseAudio takes a second or two to start a stream
            assert time.monotonic() < deadline, "the test's own ALSA line never started"
            time.sleep(0.02)

    def _open(self, kind: int, device: str) -> Any:
        return alsaaudio.PCM(
            kind,
            device=device,
            channels=1,
            rate=RATE,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=PERIOD,
            periods=8,
        )

    def _talk(self, device: str, hz: float) -> None:
        talk = self._open(alsaaudio.PCM_PLAYBACK, device)
        n = 0
        while not self._stop.is_set():
            t = (np.arange(PERIOD) + n) / RATE
            talk.write((0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes())
            n += PERIOD
        talk.close()

    def _listen(self, device: str) -> None:
        listen = self._open(alsaaudio.PCM_CAPTURE, device)
        while not self._stop.is_set():
            length, data = listen.read()
            if length > 0:
                self.recorded.append((time.monotonic(), data))
        listen.close()

    def heard(self, start: float, end: float) -> np.ndarray:
        chunks = [d for t, d in self.recorded if start <= t <= end]
        return np.frombuffer(b"".join(chunks), dtype="<i2").astype(float)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


def dominant(samples: np.ndarray, min_s: float = 0.25) -> float:
    return strongest_frequency(samples, RATE, min_s)


def test_call_on_alsa_both_ways_with_ringback(
    pulse: pulseaudio.PulseAudioServer, phones: PhoneFactory
) -> None:
    for sink in ("spk", "mic"):  # other tests of the session may have turned them down
        mixer = alsaaudio.Mixer("Master", device=pulse.control(sink))
        mixer.setvolume(100)
        mixer.setmute(0)
    line = Line(pulse, talk_hz=700)
    try:
        a_port, b_port = free_port(), free_port()
        alice, _ = phones.direct(
            "alice", [("Bob", f"sip:bob@127.0.0.1:{b_port}")], port=a_port, board=alsa_board(pulse)
        )
        bob, _ = phones.direct(
            "bob",
            [("Alice", f"sip:alice@127.0.0.1:{a_port}")],
            port=b_port,
            mic=phones.tone("bob", 500),
        )
        alice.press("contact-1")
        bob.wait_for(has_call("ringing"))
        ringing_from = time.monotonic()
        time.sleep(5.5)  # ringback is 1 s on, 4 s off: at least one burst after start-up
        ringing_to = time.monotonic()
        bob.press("answer")
        alice.wait_for(has_call("confirmed"))
        talk_from = time.monotonic() + 0.5
        time.sleep(3)
        talk_to = time.monotonic()
        alice.press("end")
        bob.wait_for(no_calls)
    finally:
        line.stop()
    assert dominant(line.heard(ringing_from, ringing_to), min_s=0.15) == pytest.approx(
        425, rel=0.02
    )  # ringback
    assert dominant(line.heard(talk_from, talk_to)) == pytest.approx(500, rel=0.01)  # bob's voice
    bob.stop()
    from tests.phones import dominant_frequency

    assert dominant_frequency(phones.workdir / "bob-speaker.wav") == pytest.approx(700, rel=0.01)


def test_volume_moves_the_mixer_and_mute_shows(
    pulse: pulseaudio.PulseAudioServer, phones: PhoneFactory
) -> None:
    alice, _ = phones.direct("alice", [], board=alsa_board(pulse), audio={"volume_step": 25})
    mixer = alsaaudio.Mixer("Master", device=pulse.control("spk"))
    mixer.setvolume(50)
    alice.press("volume_up")
    assert alice.state()["volume"] == 75
    assert mixer.getvolume()[0] == 75
    for _ in range(3):
        alice.press("volume_up")
    assert mixer.getvolume()[0] == 100
    assert alice.state()["screen"][1] == "Volume 100%"
    for _ in range(6):
        alice.press("volume_down")
    assert mixer.getvolume()[0] == 0
    alice.press("mute")
    state = alice.state()
    assert state["muted"] is True and "MUTE" in state["screen"][-1]
    mixer.setvolume(100)  # the sinks are the session's: leave them as found


def test_missing_sound_device_is_shown_and_recovers(
    pulse_late: pulseaudio.PulseAudioServer, phones: PhoneFactory
) -> None:
    b_port = free_port()
    board = alsa_board(pulse_late, mic="late", spk="late")
    alice, _ = phones.direct("alice", [("Bob", f"sip:bob@127.0.0.1:{b_port}")], board=board)
    bob, _ = phones.direct("bob", [], port=b_port)
    state = alice.wait_for(lambda s: "NOSOUND" in s["screen"][-1], what="no sound shown")
    assert "Audio" not in state["screen"][0]
    alice.press("contact-1")  # signalling works without sound
    bob.wait_for(has_call("ringing"))
    alice.press("end")
    pulse_late.start()  # the card appears
    alice.wait_for(lambda s: "NOSOUND" not in s["screen"][-1], timeout=10, what="sound back")
    assert "sound device running" in alice.log_tail(200)


def test_state_reports_the_sound_stats_on_alsa_only(
    pulse: pulseaudio.PulseAudioServer, phones: PhoneFactory
) -> None:
    """The counters, and that an idle phone's card is stopped (no cycles) until
    a tone or a call needs it."""
    b_port = free_port()
    alice, _ = phones.direct(
        "alice",
        [("Bob", f"sip:bob@127.0.0.1:{b_port}")],
        board=alsa_board(pulse),
        audio={"echo": "webrtc"},
    )
    on_wav, _ = phones.direct("bob", [], port=b_port)
    idle = alice.wait_for(
        lambda s: (
            s["sound"]["state"] == "running"
            and s["sound"]["cycles"] > 0
            and not s["sound"]["streaming"]
        ),
        what="the sound device open and idle",
    )["sound"]
    time.sleep(0.5)
    assert alice.state()["sound"]["cycles"] == idle["cycles"]  # no periodic work while idle
    alice.press("contact-1")
    on_wav.wait_for(has_call("ringing"))
    first = alice.wait_for(lambda s: s["sound"]["streaming"], what="ringback")["sound"]
    time.sleep(0.5)
    later = alice.state()["sound"]
    alice.press("end")
    assert later["aec"] is True and later["aec_backend"] == "webrtc"
    assert later["cycles"] - first["cycles"] >= 10  # 20 ms frames for half a second
    assert later["cpu_seconds"] > first["cpu_seconds"]
    assert set(later["capture"]) == set(later["playback"]) >= {"overruns", "underruns"}
    assert later["drift_corrections"] == (
        later["capture"]["dropped_samples"]
        + later["capture"]["inserted_samples"]
        + later["playback"]["dropped_samples"]
        + later["playback"]["inserted_samples"]
    )
    assert on_wav.state()["sound"] is None
