"""How far the microphone's echo lags the speaker, measured from the sound itself.

pjmedia's WebRTC canceller (the legacy AEC) has a 48 ms filter at 16 kHz and
corrects a longer delay on its own only after about 15 s of audio. The
positions ALSA reports cover the device buffers but not the air between
speaker and microphone, nor buffering a driver does not report (PulseAudio's
server side), and they jitter by a period. So the bridge measures the whole
lag between what it wrote to playback and what it captured: the rises of the
energy envelopes of both streams (mean absolute value over 2 ms blocks, where
it grows) are cross-correlated over every lag up to `max_lag_ms`, while the
far end talks. Rises, because a room's decaying tail smears where a sound
ends but not where it starts: on the envelopes themselves the peak came
10-25 ms late in a room with a 150 ms tail, and two unrelated voices
correlated almost as well as a voice and its echo.

Cheap enough for the audio thread in pure Python: one multiply-add per lag
per rising block: 0.8 % of a core here (x86, loaded) for 400 ms of lags.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

BLOCK = 32  # samples per envelope block: 2 ms at 16 kHz
ACTIVE_LEVEL = 30.0  # mean |sample| of a playback block that counts as sound (-60 dBFS)
BATCH_ACTIVE_BLOCKS = 500  # playback blocks with sound per estimate (1 s)
# Pearson correlation of the envelopes' rises at the peak: 0.35-0.7 for an
# echo in rooms of 20-300 ms, at most 0.25 between unrelated voices.
MIN_CORRELATION = 0.3
PEAK_SHARE = 0.9  # a peak this close to the highest competes with it
# Weight of a new batch in the running correlation the estimates come from:
# one batch's peak strays by 10-20 ms at times (a pitch period, a repeated
# syllable), and two such batches in a row moved the reference off the echo
# in 2 of 12 first calls measured (60 and 120 ms rooms, loaded machine).
BATCH_WEIGHT = 0.35


@dataclass(frozen=True)
class DelayEstimate:
    """`lag` samples from a playback sample to its echo in the capture stream."""

    lag: int
    correlation: float


def envelope(pcm: bytes) -> list[float]:
    """Mean absolute value of each BLOCK of S16 samples."""
    samples = array("h", pcm)
    return [sum(map(abs, samples[i : i + BLOCK])) / BLOCK for i in range(0, len(samples), BLOCK)]


def rises(env: list[float], last: float) -> list[float]:
    """How much each block's envelope grew over the one before (`last` for the first)."""
    out = []
    for value in env:
        out.append(max(value - last, 0.0))
        last = value
    return out


class DelayEstimator:
    """Cross-correlates the rises of capture and playback envelopes, batch by batch.

    Feed it both streams by absolute sample index (multiples of BLOCK):
    `playback(index, pcm)` for what was written, `capture(index, pcm)` for
    what was read. `capture` returns an estimate whenever a batch with
    enough far-end sound is complete and its correlation peak is clear,
    else None. One thread only (the audio thread).

    Each estimate comes from the correlations of the batches so far, the
    older weighing less (BATCH_WEIGHT), so the first comes after one batch
    and the later ones stray less; `restart` forgets them.

    Of several peaks nearly as high as the highest (speech repeats itself at
    its pitch period, and the envelopes with it), the earliest is taken: a
    reference a little early costs the canceller a few dB, one late costs
    it the echo.
    """

    def __init__(self, rate: int, max_lag_ms: int) -> None:
        self.lags = rate * max_lag_ms // 1000 // BLOCK
        self._ref: list[float] = []  # rises of the playback envelope
        self._ref_start = 0  # block index of _ref[0]
        self._last_played = self._last_captured = 0.0
        self.restart()

    def restart(self) -> None:
        """Start afresh: the streams moved against each other (an xrun).

        The correlations of past batches are forgotten; what was played
        stays known, by its index.
        """
        self._running: list[float] | None = None  # correlations by lag, batches so far
        self._new_batch()

    def _new_batch(self) -> None:
        # _acc[i] sums capture[k] * playback[k - (lags - 1 - i)] over the batch
        self._acc = [0.0] * self.lags
        self._first: int | None = None  # capture blocks first..last are in the batch
        self._last = 0
        self._sum_c = self._sum_cc = 0.0
        self._active = 0
        # Running sums of the playback envelope and its square, by block index
        # from _prefix_start, for each lag's mean and variance at the end.
        self._prefix_start = self._ref_start
        self._prefix = [0.0]
        self._prefix_sq = [0.0]
        for r in self._ref:
            self._prefix.append(self._prefix[-1] + r)
            self._prefix_sq.append(self._prefix_sq[-1] + r * r)

    def playback(self, index: int, pcm: bytes) -> None:
        block = index // BLOCK
        if not self._ref or block != self._ref_start + len(self._ref):
            # A new stream: nothing was played before it.
            self._ref = [0.0] * self.lags
            self._ref_start = block - self.lags
            self.restart()
        env = envelope(pcm)
        self._active += sum(1 for e in env if e >= ACTIVE_LEVEL)
        rise = rises(env, self._last_played)
        self._last_played = env[-1]
        self._ref.extend(rise)
        for r in rise:
            self._prefix.append(self._prefix[-1] + r)
            self._prefix_sq.append(self._prefix_sq[-1] + r * r)
        excess = len(self._ref) - 2 * self.lags
        if excess > 0:
            del self._ref[:excess]
            self._ref_start += excess

    def capture(self, index: int, pcm: bytes) -> DelayEstimate | None:
        lags = self.lags
        env = envelope(pcm)
        rise = rises(env, self._last_captured)
        self._last_captured = env[-1]
        for offset, c in enumerate(rise):
            k = index // BLOCK + offset
            lo = k - lags + 1 - self._ref_start  # playback block at the longest lag
            hi = k + 1 - self._ref_start  # one past the playback block at lag 0
            if lo < 0 or hi > len(self._ref) or k - lags + 1 < self._prefix_start:
                continue  # playback not known that far back (start) or yet
            if self._first is None:
                self._first = k
            if c:  # about half the blocks do not rise, and add nothing
                self._acc = [a + c * r for a, r in zip(self._acc, self._ref[lo:hi], strict=True)]
            self._last = k
            self._sum_c += c
            self._sum_cc += c * c
        if self._first is None or self._active < BATCH_ACTIVE_BLOCKS:
            return None
        if self._last - self._first + 1 < lags:
            return None
        rho = self._correlations()
        if self._running is not None:
            rho = [
                (1 - BATCH_WEIGHT) * old + BATCH_WEIGHT * new
                for old, new in zip(self._running, rho, strict=True)
            ]
        self._running = rho
        self._new_batch()
        return self._peak(rho)

    def _correlations(self) -> list[float]:
        """Pearson correlation of the envelopes at each lag (index as `_acc`)."""
        assert self._first is not None
        n = self._last - self._first + 1
        mean_c = self._sum_c / n
        var_c = self._sum_cc / n - mean_c * mean_c
        out = []
        for i, acc in enumerate(self._acc):
            lag = self.lags - 1 - i
            a = self._first - lag - self._prefix_start
            b = self._last - lag + 1 - self._prefix_start
            mean_r = (self._prefix[b] - self._prefix[a]) / n
            var_r = (self._prefix_sq[b] - self._prefix_sq[a]) / n - mean_r * mean_r
            denominator = (var_c * var_r) ** 0.5 if var_c > 0 and var_r > 0 else 0.0
            out.append((acc / n - mean_c * mean_r) / denominator if denominator else 0.0)
        return out

    def _peak(self, rho: list[float]) -> DelayEstimate | None:
        best = max(rho)
        if best < MIN_CORRELATION:
            return None
        # The earliest local maximum nearly as high as the best (largest index).
        for i in range(self.lags - 1, -1, -1):
            left = rho[i - 1] if i > 0 else float("-inf")
            right = rho[i + 1] if i + 1 < self.lags else float("-inf")
            if rho[i] >= PEAK_SHARE * best and rho[i] >= left and rho[i] >= right:
                return DelayEstimate(lag=(self.lags - 1 - i) * BLOCK, correlation=rho[i])
        return None
