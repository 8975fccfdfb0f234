"""The virtual room's echo path and signals (the ALSA side is exercised by test_alsa)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from tests.audio.room import ROOM_LATENCY_MS, EchoPath, level_db, read_wav, speech, write_wav

RATE = 16000


def test_impulse_response_has_the_delay_and_the_gain() -> None:
    path = EchoPath(delay_ms=40.0, decay_ms=100.0, gain_db=-6.0)
    ir = path.impulse_response()
    silent = int(RATE * (40.0 - ROOM_LATENCY_MS) / 1000)
    assert not ir[:silent].any()
    assert ir[silent] != 0
    assert len(ir) == silent + int(RATE * 0.1)
    assert 10 * np.log10(np.sum(ir**2)) == pytest.approx(-6.0, abs=0.01)
    tail = ir[silent:]
    first, last = np.sum(tail[:160] ** 2), np.sum(tail[-160:] ** 2)
    assert 10 * np.log10(first / last) > 40  # decays towards -60 dB


def test_the_same_seed_gives_the_same_room() -> None:
    assert np.array_equal(EchoPath(seed=3).impulse_response(), EchoPath(seed=3).impulse_response())
    assert not np.array_equal(
        EchoPath(seed=3).impulse_response(), EchoPath(seed=4).impulse_response()
    )


def test_speech_is_16_khz_and_loud_enough() -> None:
    voice = speech("Hello there, this is a test.")
    assert len(voice) > RATE
    assert -30 < level_db(voice) < -3


def test_wav_round_trip_and_wrong_formats_refused(tmp_path: Path) -> None:
    samples = np.arange(-1000, 1000, dtype=np.float64)
    write_wav(tmp_path / "a.wav", samples)
    assert np.array_equal(read_wav(tmp_path / "a.wav"), samples)
    with wave.open(str(tmp_path / "b.wav"), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(bytes(400))
    with pytest.raises(ValueError, match="16000 Hz mono 16-bit"):
        read_wav(tmp_path / "b.wav")
