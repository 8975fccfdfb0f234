"""Retrying and refreshing, written once for every user.

Registration, subscriptions, publications and the board's input devices all
retry what failed with the same rule: a delay that doubles from a first value
up to a ceiling, optionally spread by jitter so that phones which failed
together do not retry together, and reset by the next success. Leases
(SUBSCRIBE, PUBLISH) are refreshed at one rule too, and a final response to
either means the same: success, try again, answer a challenge, take the
server's Min-Expires, or give up. (pjsua refreshes registrations itself.)
"""

from __future__ import annotations

import random
from enum import Enum


class Backoff:
    """Delays from `first` doubling to `most`, each spread by +-`jitter` (a fraction)."""

    def __init__(self, first: float, most: float, jitter: float = 0.0) -> None:
        if not 0 < first <= most or not 0 <= jitter < 1:
            raise ValueError(f"bad back-off: first {first}, most {most}, jitter {jitter}")
        self.first = first
        self.most = most
        self.jitter = jitter
        self._next = first

    def delay(self, server_asked: float | None = None) -> float:
        """The wait before the next attempt: `server_asked` (a Retry-After) if given,
        else the current step; either way the next step doubles."""
        step = self._next
        self._next = min(step * 2, self.most)
        if server_asked is not None:
            return server_asked
        return step * random.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else step

    def reset(self) -> None:
        """A success: the next failure waits `first` again."""
        self._next = self.first

    @property
    def failing(self) -> bool:
        """Whether an attempt failed since the last `reset`."""
        return self._next > self.first


def refresh_delay(expires: float) -> float:
    """When to refresh a lease granted for `expires` seconds: at 90 %, at least 5 s
    before it runs out, never sooner than 1 s."""
    return max(1.0, min(expires * 0.9, expires - 5.0))


class Outcome(Enum):
    """What a final response to a SUBSCRIBE or PUBLISH means for the sender."""

    SUCCESS = "success"  # 2xx
    CHALLENGE = "challenge"  # 401/407: answer with credentials
    TOO_BRIEF = "too brief"  # 423: ask again with the server's Min-Expires
    RETRY = "retry"  # no answer, 408, 480, 500, 503, 504, 6xx: again later
    FATAL = "fatal"  # anything else: the request itself is refused


_RETRY_STATUSES = frozenset({408, 480, 500, 503, 504})


def classify(status: int | None) -> Outcome:
    """The `Outcome` of a final status; None (a timeout or transport error) is RETRY."""
    if status is None or status in _RETRY_STATUSES or status >= 600:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status in (401, 407):
        return Outcome.CHALLENGE
    if status == 423:
        return Outcome.TOO_BRIEF
    return Outcome.FATAL
