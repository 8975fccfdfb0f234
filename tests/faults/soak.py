"""Many calls between two phones through Kamailio, measuring what each leaves behind.

Each call is as short as it honestly can be: alice presses bob's button, bob
answers as soon as he rings, alice hangs up as soon as the call is confirmed,
and the next call starts when both phones are idle, at most 5 a second. After `warmup` calls each
phone's RSS, open file descriptors and pjsua call slots are noted; after the
last call they are compared.

The warm-up must outlast pjsip's transaction timers: a non-INVITE server
transaction (the BYE the callee gets) is kept 32 s after its answer (timer J,
RFC 3261 section 17.2.2), client ones 5 s (timer K). The memory they hold
grows for the first 32 s of calls and then stays level (measured at 6-7
calls a second: malloc's bytes in use went from 8.5 to 28 MB over 300 calls,
and back to 8.6 MB after 40 s idle), and malloc keeps the pages it got, so
RSS measured after 300 paced calls (60 s at least) is what a long-running
phone keeps. Used by
`tests/faults/test_soak.py` and `bench/soak.py`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from phone.remote import RemotePhone
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, account, call_and_hang_up

# At most 5 calls a second: the memory pjsip's transactions hold (below) grows
# with the call rate, so an unpaced soak that speeds up when the machine's load
# drops would show growth that is only a higher rate. Loaded, calls take ~200 ms.
CALL_INTERVAL_S = 0.2
SETTLE_S = 35.0  # longer than an accepted MSRP connection may wait for its first SEND (30 s)


@dataclass(frozen=True)
class Usage:
    """What one phone process holds at one moment."""

    rss_kib: int
    fds: int
    call_slots: int


@dataclass
class SoakResult:
    calls: int = 0
    seconds: float = 0.0  # the calls after the warm-up
    before: dict[str, Usage] = field(default_factory=dict)  # after the warm-up
    after: dict[str, Usage] = field(default_factory=dict)

    def rss_growth_kib(self, name: str) -> int:
        return self.after[name].rss_kib - self.before[name].rss_kib

    def summary(self) -> str:
        lines = [f"{self.calls} calls in {self.seconds:.1f} s after the warm-up"]
        for name, before in self.before.items():
            after = self.after[name]
            lines.append(
                f"  {name}: RSS {before.rss_kib / 1024:.1f} -> {after.rss_kib / 1024:.1f} MiB "
                f"({self.rss_growth_kib(name):+d} KiB), fds {before.fds} -> {after.fds}, "
                f"call slots {before.call_slots} -> {after.call_slots}"
            )
        return "\n".join(lines)


def usage(phone: RemotePhone) -> Usage:
    assert phone.process is not None
    pid = phone.process.pid
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return Usage(rss_kib=rss, fds=fds, call_slots=int(phone.state()["call_slots"]))


def start_pair(server: Kamailio, factory: PhoneFactory) -> tuple[RemotePhone, RemotePhone]:
    """alice and bob, registered with `server`, each the other's contact-1."""
    alice = factory.start("alice", account(server, "alice"), [("Bob", server.uri("bob"))])
    bob = factory.start("bob", account(server, "bob"), [("Alice", server.uri("alice"))])
    for phone in (alice, bob):
        phone.wait_for(lambda s: bool(s["registered"]), what=f"{phone.name} registered")
    return alice, bob


def paced_calls(alice: RemotePhone, bob: RemotePhone, calls: int) -> None:
    """`calls` calls, one every `CALL_INTERVAL_S` at most."""
    next_start = time.monotonic()
    for _ in range(calls):
        time.sleep(max(0.0, next_start - time.monotonic()))
        next_start = time.monotonic() + CALL_INTERVAL_S
        call_and_hang_up(alice, bob)


def soak(alice: RemotePhone, bob: RemotePhone, calls: int, warmup: int) -> SoakResult:
    """`warmup` calls, then `calls` more, alice calling bob each time."""
    paced_calls(alice, bob, warmup)
    result = SoakResult(calls=calls)
    result.before = {phone.name: usage(phone) for phone in (alice, bob)}
    started = time.monotonic()
    paced_calls(alice, bob, calls)
    result.seconds = time.monotonic() - started
    result.after = {phone.name: settled(phone, result.before[phone.name]) for phone in (alice, bob)}
    return result


def settled(phone: RemotePhone, before: Usage, timeout: float = SETTLE_S) -> Usage:
    """`phone`'s usage once its last call's slot and sockets are released, or as it
    is after `timeout`: pjsua frees a call slot a moment after the call is
    reported over, and an accepted MSRP connection whose call ended before its
    first SEND closes only when its 30 s bind timeout runs out. (Once, at load
    8, both phones still had one socket more than before 5 s after the last
    call; over 60 and over 1,000 calls the count stayed level.)"""
    deadline = time.monotonic() + timeout
    while True:
        now = usage(phone)
        if (now.call_slots == 0 and now.fds <= before.fds) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)
