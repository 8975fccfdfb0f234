"""EchoCanceller: pjmedia's WebRTC and Speex cancellers on a synthetic echo of speech."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from phone.audio import echo as echo_module
from phone.audio.echo import (
    Aggressiveness,
    EchoAlgorithm,
    EchoCanceller,
    EchoConfig,
    EchoUnavailable,
)
from tests.audio.room import ROOM_LATENCY_MS, EchoPath, level_db, to_pcm

RATE = 16000
FRAME = 320
CONVERGED_S = 2.0


def run(canceller: EchoCanceller, mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    mic_pcm, far_pcm = to_pcm(mic), to_pcm(far)
    out = bytearray()
    for i in range(0, len(mic_pcm) - FRAME * 2 + 1, FRAME * 2):
        out += canceller.cancel(mic_pcm[i : i + FRAME * 2], far_pcm[i : i + FRAME * 2])
    return np.frombuffer(bytes(out), dtype="<i2").astype(np.float64)


def echo_of(far: np.ndarray, delay_ms: float = 40.0) -> np.ndarray:
    ir = EchoPath(delay_ms=delay_ms, decay_ms=100.0, gain_db=-6.0).impulse_response()
    return np.convolve(far, ir)[: len(far)]


def erle_db(mic: np.ndarray, out: np.ndarray) -> float:
    start = int(CONVERGED_S * RATE)
    return level_db(mic[start : len(out)]) - level_db(out[start:])


@pytest.mark.parametrize(
    ("config", "minimum_db"),
    [
        (EchoConfig(EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.MODERATE), 30.0),
        (EchoConfig(EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.AGGRESSIVE), 35.0),
        (EchoConfig(EchoAlgorithm.SPEEX, tail_ms=200), 30.0),
    ],
    ids=["webrtc-moderate", "webrtc-aggressive", "speex"],
)
def test_single_talk_echo_is_cancelled(
    pj_endpoint: object, far_speech: np.ndarray, config: EchoConfig, minimum_db: float
) -> None:
    if config.algorithm is EchoAlgorithm.SPEEX and shutil.which("espeak-ng") is None:
        # Speex diverges on the synthetic stand-in (4 dB); it needs real speech.
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    mic = echo_of(far_speech)
    with EchoCanceller(config) as canceller:
        assert canceller.active
        out = run(canceller, mic, far_speech)
        stats = canceller.stats()
    assert stats.algorithm is config.algorithm
    assert stats.frames == len(out) // FRAME
    # WebRTC reports the delay it tracks (its own reckoning, not the room's 40 ms).
    assert (stats.delay_ms is not None) == (config.algorithm is EchoAlgorithm.WEBRTC)
    assert erle_db(mic, out) >= minimum_db


def test_near_end_speech_survives_double_talk(
    pj_endpoint: object, far_speech: np.ndarray, near_speech: np.ndarray
) -> None:
    near = np.zeros(len(far_speech))
    start = 4 * RATE
    near[start : start + len(near_speech)] = near_speech[: len(near) - start]
    mic = echo_of(far_speech) + near
    config = EchoConfig(EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.CONSERVATIVE)
    with EchoCanceller(config) as canceller:
        out = run(canceller, mic, far_speech)
    talk = slice(start, start + len(near_speech))
    attenuation = level_db(near[talk]) - level_db(out[talk])
    assert attenuation <= 6.0


def test_none_passes_the_capture_through(pj_endpoint: object) -> None:
    frame = to_pcm(np.arange(FRAME) * 50.0)
    with EchoCanceller(EchoConfig(EchoAlgorithm.NONE)) as canceller:
        assert not canceller.active
        assert canceller.cancel(frame, frame) == frame
        assert canceller.stats().algorithm is EchoAlgorithm.NONE


def test_frames_of_the_wrong_size_are_refused(pj_endpoint: object) -> None:
    with (
        EchoCanceller(EchoConfig(EchoAlgorithm.WEBRTC), frame_ms=10) as canceller,
        pytest.raises(ValueError, match="320 bytes"),
    ):
        canceller.cancel(bytes(640), bytes(640))


def test_missing_symbols_degrade_to_no_aec_with_a_warning(
    pj_endpoint: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unavailable() -> None:
        raise EchoUnavailable("pjsua2 does not export pjmedia_echo_create2")

    monkeypatch.setattr(echo_module, "_load", unavailable)
    with caplog.at_level(logging.WARNING, logger="phone.audio.echo"):
        canceller = EchoCanceller(EchoConfig(EchoAlgorithm.WEBRTC))
    assert not canceller.active
    assert "pjmedia_echo_create2" in caplog.text
    frame = bytes(range(256)) * 2 + bytes(128)
    assert canceller.cancel(frame, bytes(640)) == frame


def test_settings_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="delay_ms"):
        EchoConfig(delay_ms=900)
    with pytest.raises(ValueError, match="tail_ms"):
        EchoConfig(EchoAlgorithm.SPEEX, tail_ms=0)


def test_relearning_leaves_the_canceller_as_if_the_reference_had_been_right_all_along(
    pj_endpoint: object, far_speech: np.ndarray
) -> None:
    """The reference sat 4 ms after the echo for 1.5 s (a late estimate), then
    moves 20 ms earlier, 16 ms ahead of the echo. Relearning the frames heard
    so far against the moved reference gives the very output of a canceller
    that had it there from the start of a call, whose far end began talking
    after the canceller's start-up (a bridge runs before the far end talks);
    carrying on with what was learned against the old place leaves more echo
    in the next half second."""
    lead_in = np.zeros(FRAME * EchoCanceller(EchoConfig(EchoAlgorithm.NONE)).startup_frames)
    speech = np.concatenate([lead_in, far_speech])
    mic = to_pcm(echo_of(speech, delay_ms=60.0))

    def reference(lead_ms: int) -> bytes:
        delay = int((60 - ROOM_LATENCY_MS - lead_ms) * RATE / 1000)
        return to_pcm(np.concatenate([np.zeros(delay), speech]))

    right, wrong = reference(16), reference(-4)
    size = FRAME * 2
    talks = len(lead_in) * 2
    moved, until = talks + int(1.5 * RATE) * 2, talks + int(2.0 * RATE) * 2

    def frames(ref: bytes, start: int, stop: int) -> list[tuple[bytes, bytes]]:
        return [(mic[i : i + size], ref[i : i + size]) for i in range(start, stop, size)]

    outputs = {}
    for way in ("right all along", "relearned", "carried on"):
        with EchoCanceller(EchoConfig()) as canceller:
            for capture, ref in frames(right if way == "right all along" else wrong, 0, moved):
                canceller.cancel(capture, ref)
            if way == "relearned":
                canceller.relearn(frames(right, talks, moved))  # what the far end said
            outputs[way] = b"".join(
                canceller.cancel(capture, ref) for capture, ref in frames(right, moved, until)
            )
            assert canceller.stats().frames == until // size  # relearned frames not counted
    assert outputs["relearned"] == outputs["right all along"]
    echo = level_db(np.frombuffer(mic[moved:until], dtype="<i2").astype(np.float64))
    erle = {
        way: echo - level_db(np.frombuffer(out, dtype="<i2").astype(np.float64))
        for way, out in outputs.items()
    }
    assert erle["relearned"] - erle["carried on"] >= 6.0, erle
