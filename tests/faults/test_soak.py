"""A soak of calls between two phones through Kamailio (issue 15, faults).

1,000 back-to-back calls: after a warm-up of 300 (see tests/faults/soak.py
for why so many), the next 700 must leave each phone as they found it: RSS
grown by less than 2 MiB, as many open file descriptors, and no pjsua call
slot in use. `bench/soak.py` measures 1,000 calls after the warm-up.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults.soak import soak, start_pair
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, phones

__all__ = ["phones"]

pytestmark = [pytest.mark.kamailio, pytest.mark.slow]

SUITE_CALLS = 700
WARMUP_CALLS = 300
RSS_GROWTH_KIB = 2048


def test_calls_leave_no_memory_descriptors_or_call_slots_behind(
    make_kamailio: Callable[..., Kamailio], phones: PhoneFactory
) -> None:
    alice, bob = start_pair(make_kamailio(), phones)
    result = soak(alice, bob, SUITE_CALLS, WARMUP_CALLS)
    print(result.summary())
    for name in ("alice", "bob"):
        before, after = result.before[name], result.after[name]
        assert result.rss_growth_kib(name) < RSS_GROWTH_KIB, result.summary()
        # No more than before: the count taken after the warm-up may still hold
        # the last warm-up call's MSRP socket, which closes within 30 s.
        assert after.fds <= before.fds, result.summary()
        assert after.call_slots == 0, result.summary()
