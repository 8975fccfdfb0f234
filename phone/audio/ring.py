"""A bounded single-producer/single-consumer ring of 16-bit mono PCM.

It sits between two clocks: ALSA's (the sound card) and pjmedia's (the null
sound device, which runs on system time). The two drift apart by some parts
per million, so the fill level creeps. The consumer absorbs that creep by
reading one sample more or one sample less than a frame and stretching it to
a frame with linear interpolation: a 1-sample change in 320 is far below
what an ear hears, where dropping or repeating a whole frame clicks. Each
correction is counted. Overruns (the producer found the ring full: the oldest
audio is discarded so the latency snaps back) and underruns (the consumer
found too little: it gets silence, and the ring re-primes to its target) are
counted too.

One lock guards the indices; it is held for a memcpy, never across I/O, so
neither clock thread waits on the other for longer than a copy.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass

SAMPLE_BYTES = 2
# Smoothing of the fill level seen by the consumer: about 50 reads (one
# second of 20 ms frames), so scheduling jitter does not trigger corrections.
FILL_SMOOTHING = 0.02


@dataclass(frozen=True)
class RingStats:
    """Counters since creation; corrections are single samples."""

    overruns: int
    underruns: int
    dropped_samples: int
    inserted_samples: int
    fill_samples: int

    @property
    def drift_corrections(self) -> int:
        return self.dropped_samples + self.inserted_samples


def stretch(samples: array, length: int) -> array:
    """`samples` resampled to `length` samples by linear interpolation.

    Used with lengths that differ by one, so the pitch change (about 0.3% for
    one sample in 320) is inaudible and there is no discontinuity.
    """
    count = len(samples)
    if count == length:
        return samples
    out = array("h", bytes(length * SAMPLE_BYTES))
    if count == 0:
        return out
    if length == 1 or count == 1:
        out[0] = samples[0]
        for i in range(1, length):
            out[i] = samples[-1]
        return out
    scale = (count - 1) / (length - 1)
    for i in range(length):
        pos = i * scale
        j = int(pos)
        frac = pos - j
        if j + 1 < count:
            out[i] = int(samples[j] + (samples[j + 1] - samples[j]) * frac)
        else:
            out[i] = samples[count - 1]
    return out


class PcmRing:
    """Bounded SPSC ring of S16 mono samples with drift correction on read.

    `capacity` and `target` are in samples. The consumer aims to keep `target`
    samples buffered: enough to ride out the other clock's jitter, and no more,
    since every buffered sample is latency. `tolerance` is the dead band
    around the target inside which no correction is made; a fill more than
    `resync_excess` above the target is cut back to the target at once.
    """

    def __init__(self, capacity: int, target: int, tolerance: int, resync_excess: int) -> None:
        if not 0 < target < capacity:
            raise ValueError(f"target {target} must be within (0, {capacity})")
        self.capacity = capacity
        self.target = target
        self.tolerance = tolerance
        self.resync_excess = resync_excess
        self._buf = bytearray(capacity * SAMPLE_BYTES)
        self._head = 0  # next sample to read, counted from the start (monotonic)
        self._tail = 0  # next sample to write (monotonic)
        self._lock = threading.Lock()
        self._priming = True
        self._smoothed_fill = float(target)
        self._overruns = 0
        self._underruns = 0
        self._dropped = 0
        self._inserted = 0

    @property
    def fill(self) -> int:
        with self._lock:
            return self._tail - self._head

    def clear(self) -> None:
        """Empty the ring (a stream restarts); counters are kept."""
        with self._lock:
            self._head = self._tail
            self._priming = True

    def write(self, pcm: bytes) -> None:
        """Append samples (producer side); on overflow the oldest are discarded."""
        count = len(pcm) // SAMPLE_BYTES
        if count > self.capacity:
            pcm = pcm[-self.capacity * SAMPLE_BYTES :]
            count = self.capacity
        with self._lock:
            free = self.capacity - (self._tail - self._head)
            if count > free:
                self._overruns += 1
                # Keep the newest audio, down to the target, so latency recovers.
                keep = max(self.target - count, 0)
                self._head = self._tail - min(keep, self._tail - self._head)
            self._copy_in(pcm, self._tail)
            self._tail += count

    def read(self, count: int) -> bytes:
        """Take exactly `count` samples (consumer side), correcting drift by one sample."""
        with self._lock:
            fill = self._tail - self._head
            if self._priming:
                if fill < self.target:
                    return bytes(count * SAMPLE_BYTES)
                # Start at the target: what was written before the consumer
                # began (pjmedia reads a port only once it is connected) or
                # before it re-primed was never due to anyone, so it is not an overrun.
                self._priming = False
                self._head = self._tail - self.target
                fill = self.target
                self._smoothed_fill = float(fill)
            if fill > self.target + self.resync_excess:
                # Far beyond drift (a burst, or a clock that stalled): jump back to
                # the target at once instead of trimming a sample per frame for
                # seconds. Counted as an overrun: audio was discarded.
                self._overruns += 1
                self._head = self._tail - self.target
                fill = self.target
                self._smoothed_fill = float(fill)
            self._smoothed_fill += (fill - self._smoothed_fill) * FILL_SMOOTHING
            take = count
            if self._smoothed_fill > self.target + self.tolerance and fill > count + 1:
                take = count + 1
                self._dropped += 1
                self._smoothed_fill -= 1
            elif self._smoothed_fill < self.target - self.tolerance:
                take = count - 1
                self._inserted += 1
                self._smoothed_fill += 1
            if fill < take:
                self._underruns += 1
                self._priming = True
                return bytes(count * SAMPLE_BYTES)
            raw = self._copy_out(self._head, take)
            self._head += take
        if take == count:
            return raw
        return stretch(array("h", raw), count).tobytes()

    def stats(self) -> RingStats:
        with self._lock:
            return RingStats(
                overruns=self._overruns,
                underruns=self._underruns,
                dropped_samples=self._dropped,
                inserted_samples=self._inserted,
                fill_samples=self._tail - self._head,
            )

    def _copy_in(self, pcm: bytes, at: int) -> None:
        start = (at % self.capacity) * SAMPLE_BYTES
        first = min(len(pcm), len(self._buf) - start)
        self._buf[start : start + first] = pcm[:first]
        if first < len(pcm):
            self._buf[: len(pcm) - first] = pcm[first:]

    def _copy_out(self, at: int, count: int) -> bytes:
        start = (at % self.capacity) * SAMPLE_BYTES
        size = count * SAMPLE_BYTES
        first = min(size, len(self._buf) - start)
        if first == size:
            return bytes(self._buf[start : start + size])
        return bytes(self._buf[start:]) + bytes(self._buf[: size - first])
