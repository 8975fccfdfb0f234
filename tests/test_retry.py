"""Back-off, refresh timing and response classification (phone.retry)."""

from __future__ import annotations

import pytest

from phone.retry import Backoff, Outcome, classify, refresh_delay


def test_backoff_doubles_to_its_ceiling_and_resets() -> None:
    backoff = Backoff(1.0, 5.0)
    assert not backoff.failing
    assert [backoff.delay() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.failing
    backoff.reset()
    assert not backoff.failing
    assert backoff.delay() == 1.0


def test_backoff_takes_the_servers_delay_but_still_doubles() -> None:
    backoff = Backoff(1.0, 60.0)
    assert backoff.delay(server_asked=30.0) == 30.0
    assert backoff.delay() == 2.0


def test_backoff_jitter_stays_within_its_spread() -> None:
    backoff = Backoff(10.0, 10.0, jitter=0.2)
    delays = {backoff.delay() for _ in range(200)}
    assert all(8.0 <= d <= 12.0 for d in delays)
    assert len(delays) > 1


@pytest.mark.parametrize("first, most, jitter", [(0.0, 1.0, 0.0), (2.0, 1.0, 0.0), (1.0, 2.0, 1.0)])
def test_backoff_refuses_nonsense(first: float, most: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        Backoff(first, most, jitter)


@pytest.mark.parametrize("expires, delay", [(600, 540.0), (30, 25.0), (3, 1.0)])
def test_refresh_comes_before_the_lease_runs_out(expires: int, delay: float) -> None:
    assert refresh_delay(expires) == delay


@pytest.mark.parametrize(
    "status, outcome",
    [
        (200, Outcome.SUCCESS),
        (202, Outcome.SUCCESS),
        (401, Outcome.CHALLENGE),
        (407, Outcome.CHALLENGE),
        (423, Outcome.TOO_BRIEF),
        (None, Outcome.RETRY),
        (408, Outcome.RETRY),
        (503, Outcome.RETRY),
        (603, Outcome.RETRY),
        (403, Outcome.FATAL),
        (404, Outcome.FATAL),
        (489, Outcome.FATAL),
    ],
)
def test_final_responses_are_classified(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome
