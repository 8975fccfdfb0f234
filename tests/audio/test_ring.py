"""PcmRing: exact transfer, over/underruns, and drift absorbed one sample at a time."""

from __future__ import annotations

import math
from array import array

from hypothesis import given
from hypothesis import strategies as st

from phone.audio.ring import PcmRing, stretch

FRAME = 320


def pcm(values: list[int]) -> bytes:
    return array("h", values).tobytes()


def samples(data: bytes) -> list[int]:
    return list(array("h", data))


def ramp(start: int, count: int) -> bytes:
    return pcm([(start + i) % 30000 for i in range(count)])


def make_ring() -> PcmRing:
    return PcmRing(
        capacity=FRAME * 10, target=FRAME * 2, tolerance=FRAME // 2, resync_excess=FRAME * 3
    )


def test_frames_come_out_as_they_went_in_once_primed() -> None:
    ring = make_ring()
    assert ring.read(FRAME) == bytes(FRAME * 2)  # priming: silence, not an underrun
    ring.write(ramp(0, FRAME))
    ring.write(ramp(FRAME, FRAME))
    assert samples(ring.read(FRAME)) == samples(ramp(0, FRAME))
    ring.write(ramp(2 * FRAME, FRAME))
    assert samples(ring.read(FRAME)) == samples(ramp(FRAME, FRAME))
    stats = ring.stats()
    assert (stats.underruns, stats.overruns, stats.drift_corrections) == (0, 0, 0)


def test_underrun_gives_silence_counts_and_reprimes() -> None:
    ring = make_ring()
    ring.write(ramp(0, 2 * FRAME))
    ring.read(FRAME)
    ring.read(FRAME)
    assert ring.read(FRAME) == bytes(FRAME * 2)
    assert ring.stats().underruns == 1
    ring.write(ramp(0, FRAME))
    assert ring.read(FRAME) == bytes(FRAME * 2)  # waits for the target again
    assert ring.stats().underruns == 1


def test_overrun_discards_the_oldest_and_keeps_the_newest() -> None:
    ring = make_ring()
    for i in range(11):
        ring.write(ramp(i * FRAME, FRAME))
    stats = ring.stats()
    assert stats.overruns == 1
    assert stats.fill_samples == 2 * FRAME
    assert samples(ring.read(FRAME)) == samples(ramp(9 * FRAME, FRAME))


def test_a_burst_far_above_target_is_cut_back_at_once() -> None:
    ring = make_ring()
    ring.write(ramp(0, 2 * FRAME))
    ring.read(FRAME)  # the consumer runs
    for i in range(8):
        ring.write(ramp((2 + i) * FRAME, FRAME))
    ring.read(FRAME)
    stats = ring.stats()
    assert stats.overruns == 1
    assert stats.fill_samples == FRAME  # target 2 frames, one read


def test_a_consumer_that_starts_late_takes_the_newest_audio_without_an_overrun() -> None:
    """pjmedia reads a port only once it is connected: what the producer wrote
    before was due to no one, and the first read starts at the target."""
    ring = make_ring()
    for i in range(8):
        ring.write(ramp(i * FRAME, FRAME))
    assert samples(ring.read(FRAME)) == samples(ramp(6 * FRAME, FRAME))
    stats = ring.stats()
    assert (stats.overruns, stats.underruns, stats.fill_samples) == (0, 0, FRAME)


def run_clocks(ring: PcmRing, produce: int, frames: int) -> None:
    """A producer writing `produce` samples per consumer frame of FRAME samples."""
    carry = 0
    for i in range(frames):
        ring.write(ramp(carry, produce))
        carry += produce
        ring.read(FRAME)
        assert ring.stats().fill_samples < ring.target + ring.resync_excess, i


def test_a_fast_producer_is_absorbed_by_dropping_single_samples() -> None:
    ring = make_ring()
    ring.write(ramp(0, 2 * FRAME))
    run_clocks(ring, FRAME + 1, 3000)  # about 3000 ppm fast
    stats = ring.stats()
    assert stats.dropped_samples > 2000
    assert stats.inserted_samples == 0
    assert (stats.overruns, stats.underruns) == (0, 0)
    assert abs(stats.fill_samples - ring.target) <= ring.tolerance + FRAME


def test_a_slow_producer_is_absorbed_by_inserting_single_samples() -> None:
    ring = make_ring()
    ring.write(ramp(0, 2 * FRAME))
    run_clocks(ring, FRAME, 500)  # settle where the phase of the two clocks puts it
    settled = ring.stats()
    run_clocks(ring, FRAME - 1, 3000)
    stats = ring.stats()
    assert stats.inserted_samples > 2000
    assert stats.dropped_samples == settled.dropped_samples
    assert (stats.overruns, stats.underruns) == (0, 0)


def test_matched_clocks_need_no_correction_once_settled() -> None:
    ring = make_ring()
    ring.write(ramp(0, 2 * FRAME))
    run_clocks(ring, FRAME, 500)
    settled = ring.stats()
    assert settled.drift_corrections <= FRAME  # the initial offset, trimmed once
    run_clocks(ring, FRAME, 3000)
    assert ring.stats().drift_corrections == settled.drift_corrections


def test_stretching_a_sine_by_one_sample_has_no_discontinuity() -> None:
    step = 2 * math.pi * 440 / 16000
    sine = array("h", (int(10000 * math.sin(step * n)) for n in range(FRAME + 1)))
    out = stretch(sine, FRAME)
    assert len(out) == FRAME
    assert out[0] == sine[0] and out[-1] == sine[-1]
    biggest_step = max(abs(out[i + 1] - out[i]) for i in range(FRAME - 1))
    assert biggest_step <= 10000 * step * 1.05


@given(st.lists(st.integers(min_value=0, max_value=2 * FRAME), max_size=60))
def test_reads_always_return_a_whole_frame(writes: list[int]) -> None:
    ring = make_ring()
    for count in writes:
        ring.write(ramp(0, count))
        assert len(ring.read(FRAME)) == FRAME * 2
        assert 0 <= ring.stats().fill_samples <= ring.capacity
