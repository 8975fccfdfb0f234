"""Exponential back-off with jitter, for anything that retries a server.

The first wait is `first` seconds, each next one doubles up to `maximum`, and
each is spread by ±`jitter` so phones that lost the same server do not all
come back in the same second. `reset` after a success.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first: float = 1.0, maximum: float = 60.0, jitter: float = 0.2) -> None:
        if not 0 < first <= maximum or not 0 <= jitter < 1:
            raise ValueError(f"bad back-off {first=} {maximum=} {jitter=}")
        self.first = first
        self.maximum = maximum
        self.jitter = jitter
        self._next = first

    def next(self) -> float:
        """The wait before the next attempt, in seconds."""
        delay = self._next * random.uniform(1 - self.jitter, 1 + self.jitter)
        self._next = min(self._next * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.first
