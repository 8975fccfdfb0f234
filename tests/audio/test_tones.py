"""Generated tones: frequencies, cadences and levels (ITU-T E.180 values)."""

from __future__ import annotations

import itertools
import math
from array import array

import pytest

from phone.audio.tones import TONE_PLANS, ToneKind, ToneSpec, tone, tone_frames

RATE = 16000
FRAME = 320


def power_at(samples: array, freq: float) -> float:
    """Goertzel power of `freq`, normalised to the frame's total power."""
    coeff = 2 * math.cos(2 * math.pi * freq / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    total = sum(x * x for x in samples) * len(samples) / 2
    return power / total if total else 0.0


def frames(kind: ToneKind, plan: str, seconds: float) -> list[array]:
    count = int(seconds * 1000 / 20)
    return [array("h", f) for f in itertools.islice(tone(kind, plan), count)]


def is_on(frame: array) -> bool:
    return max(abs(x) for x in frame) > 1000


def test_european_busy_is_425_hz_half_a_second_on_and_off() -> None:
    got = frames(ToneKind.BUSY, "europe", 2.0)
    pattern = [is_on(f) for f in got]
    assert pattern == ([True] * 25 + [False] * 25) * 2
    assert power_at(got[10], 425.0) > 0.9
    assert all(x == 0 for x in got[30])


def test_european_ringback_is_one_second_in_five() -> None:
    pattern = [is_on(f) for f in frames(ToneKind.RINGBACK, "europe", 10.0)]
    assert pattern == ([True] * 50 + [False] * 200) * 2


def test_north_american_ringback_has_both_frequencies() -> None:
    frame = frames(ToneKind.RINGBACK, "north-america", 0.5)[10]
    assert power_at(frame, 440.0) > 0.4
    assert power_at(frame, 480.0) > 0.4


def test_ringer_warbles_between_two_frequencies() -> None:
    got = frames(ToneKind.RING, "europe", 0.2)
    # 50 ms per frequency: 0-40 ms is 800 Hz, 60-100 ms 1000 Hz, 100-140 ms 800 Hz.
    assert power_at(got[1], 800.0) > 0.8
    assert power_at(got[3], 1000.0) > 0.8
    assert power_at(got[5], 800.0) > 0.8
    biggest_step = max(abs(got[2][i + 1] - got[2][i]) for i in range(FRAME - 1))
    assert biggest_step < 32767 * 10 ** (-6 / 20) * 2 * math.pi * 1000 / RATE * 1.05


def test_level_is_the_configured_dbfs_and_bursts_fade_in() -> None:
    spec = ToneSpec((1000.0,), (200, 200), level_dbfs=-20.0)
    first, second = (array("h", f) for f in itertools.islice(tone_frames(spec), 2))
    peak = max(abs(x) for x in second)
    assert abs(20 * math.log10(peak / 32767) + 20.0) < 0.5
    assert abs(first[0]) < 100  # starts from silence, no click


def test_one_cycle_only_when_not_repeating() -> None:
    spec = ToneSpec((425.0,), (100, 100))
    assert len(list(tone_frames(spec, repeat=False))) == 10


def test_bad_plans_and_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown tone plan"):
        tone(ToneKind.BUSY, "atlantis")
    with pytest.raises(ValueError, match="on/off pairs"):
        ToneSpec((425.0,), (100,))
    with pytest.raises(ValueError, match="0 dBFS"):
        ToneSpec((425.0,), (100, 100), level_dbfs=3.0)
    assert set(TONE_PLANS["europe"]) == set(ToneKind)
