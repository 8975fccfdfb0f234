"""The echo delay estimate and how the bridge takes it, on synthetic room echoes of speech."""

from __future__ import annotations

import numpy as np
import pytest

from phone.audio.alsa import ECHO_LEAD_MS, _Alignment
from phone.audio.delay import DelayEstimate, DelayEstimator
from tests.audio.room import ROOM_LATENCY_MS, EchoPath, to_pcm

RATE = 16000
FRAME = 320
MS = RATE // 1000


def estimates(playback: np.ndarray, capture: np.ndarray) -> list[int]:
    """Every estimate, in samples, of the lag from `playback` to its echo in `capture`."""
    estimator = DelayEstimator(RATE, 400)
    play, cap = to_pcm(playback), to_pcm(capture)
    lags = []
    for i in range(0, min(len(play), len(cap)) // (2 * FRAME)):
        chunk = slice(2 * FRAME * i, 2 * FRAME * (i + 1))
        estimator.playback(FRAME * i, play[chunk])
        found = estimator.capture(FRAME * i, cap[chunk])
        if found is not None:
            lags.append(found.lag)
    return lags


def room_echo(far: np.ndarray, delay_ms: float, decay_ms: float = 100.0) -> np.ndarray:
    ir = EchoPath(delay_ms=delay_ms + ROOM_LATENCY_MS, decay_ms=decay_ms).impulse_response()
    rng = np.random.default_rng(3)
    return np.convolve(far, ir)[: len(far)] + rng.standard_normal(len(far)) * 3.0


@pytest.mark.parametrize(("delay_ms", "decay_ms"), [(20, 100), (60, 150), (120, 150), (300, 100)])
def test_finds_where_the_echo_starts(far_speech: np.ndarray, delay_ms: int, decay_ms: int) -> None:
    lags = estimates(far_speech, room_echo(far_speech, delay_ms, decay_ms))
    assert len(lags) >= 5, lags
    # Late by less than the bridge's lead (the reference must come first), early
    # by a pitch period at most (the tail must stay in the canceller's filter).
    for lag in lags:
        assert (delay_ms - 12) * MS <= lag < (delay_ms + ECHO_LEAD_MS) * MS, (delay_ms, lags)


def test_no_estimate_without_echo(far_speech: np.ndarray, near_speech: np.ndarray) -> None:
    near = np.resize(near_speech, len(far_speech))
    assert estimates(far_speech, near) == []
    assert estimates(np.zeros(len(far_speech)), room_echo(near, 40)) == []


def estimate(ms: int) -> DelayEstimate:
    return DelayEstimate(lag=ms * MS, correlation=0.8)


def test_first_estimate_sets_the_reference_ahead_of_the_echo() -> None:
    alignment = _Alignment(residual=None)
    for _ in range(50):
        alignment.reading(30 * MS)
    assert alignment.offset() == 30 * MS  # ALSA's offset alone
    assert alignment.measured(estimate(100))
    assert alignment.offset() == (100 - ECHO_LEAD_MS) * MS
    assert alignment.residual == 70 * MS


def test_a_changed_lag_needs_two_estimates_and_jitter_none() -> None:
    alignment = _Alignment(residual=None)
    alignment.reading(30 * MS)
    alignment.measured(estimate(100))
    before = alignment.offset()
    assert not alignment.measured(estimate(108))  # within tolerance: the same echo
    assert not alignment.measured(estimate(92))
    assert not alignment.measured(estimate(130))  # one estimate is no move
    assert not alignment.measured(estimate(100))
    assert not alignment.measured(estimate(130))
    assert alignment.offset() == before
    assert alignment.measured(estimate(132))  # two in a row agree
    assert alignment.offset() == (132 - ECHO_LEAD_MS) * MS


def test_after_an_xrun_the_carried_lag_is_used_then_the_first_estimate() -> None:
    alignment = _Alignment(residual=70 * MS)  # what the stream before measured
    alignment.reading(50 * MS)  # ALSA's new offset
    assert alignment.offset() == (120 - ECHO_LEAD_MS) * MS
    assert alignment.measured(estimate(300))  # PulseAudio moved it: taken at once
    assert alignment.offset() == (300 - ECHO_LEAD_MS) * MS
