"""Benchmarks of the subscription layer (phone/sip/subscription.py).

1. NOTIFY on the wire → typed event on the loop: a raw UDP notifier thread
   sends conference-info NOTIFYs (full state, 1 user) 10 ms apart to one
   subscription; the latency is from just before `sendto` to the plugin
   callback on the asyncio loop (both `time.perf_counter_ns`, one process).
   Measured twice: with the loop pumping pjsua every 1 ms, and with the core's
   former adaptive pump (3 ms while busy, 20 ms when idle; the phone now polls
   when a SIP socket is ready, phone/sip/wakeups.py).
   Also the part that is ours: hook entry → callback.
2. Refresh load: 200 presence subscriptions against Kamailio (digest, 407 per
   new nonce) with expires=20 s, so each refreshes every 15 s; RSS and CPU of
   this process idle, then with the 200 subscriptions, over the same window.

Run: python bench/notify.py [--notifies 500] [--subscriptions 200] [--window 60]
Targets (issue 3): NOTIFY → typed event p99 < 10 ms; 200 subscriptions add
< 10 MiB RSS and < 2% of a core on average.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PollStack, cpu_seconds, machine, pct, rss_mib  # noqa: E402
from phone.sip.identity import Identity  # noqa: E402
from phone.sip.message import SipMessage  # noqa: E402
from phone.sip.subscription import Notification, Subscriber  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.sip.kamailio_client import identity  # noqa: E402
from tests.sip.udp_peer import UdpSipPeer  # noqa: E402

CONFERENCE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
    'entity="sip:conf@127.0.0.1" state="full" version="{version}"><users>'
    '<user entity="sip:bob@example.test" state="full"><endpoint entity="sip:bob@127.0.0.1">'
    "<status>connected</status></endpoint></user></users></conference-info>"
)


class Stack(PollStack):
    """The bench's pjsua with a subscriber, pumped like the core (see `poll`)."""

    def __init__(self) -> None:
        super().__init__()
        self.me = f"sip:bench@127.0.0.1:{self.port}"
        self.subscriber = Subscriber(
            self.raw, Identity(self.me, lambda target: f"<{self.me}>"), self.loop
        )
        self.busy_until = 0.0

    async def poll(self, stop: Callable[[], bool], adaptive: bool) -> None:
        """Poll pjsua like the core: every 1 ms, or 3 ms busy / 20 ms idle."""
        while not stop():
            now = time.monotonic()
            if self.ep.libHandleEvents(0) > 0:
                self.busy_until = now + 1.0
            if adaptive:
                await asyncio.sleep(0.003 if now < self.busy_until else 0.020)
            else:
                await asyncio.sleep(0.001)

    def run(self, stop: Callable[[], bool], adaptive: bool = True) -> None:
        self.loop.run_until_complete(self.poll(stop, adaptive))


def bench_latency(stack: Stack, count: int) -> None:
    peer = UdpSipPeer("focus")
    delivered: list[tuple[int, Notification]] = []
    stack.subscriber.subscribe(
        "conference",
        peer.uri,
        lambda n: delivered.append((time.perf_counter_ns(), n)),
        expires=3600,
    )
    subscribe = peer.receive(lambda: stack.ep.libHandleEvents(2), match=lambda m: m.is_request)
    assert peer.last_from is not None
    peer.send(
        UdpSipPeer.response(subscribe, 200, "OK", to_tag="f1", headers=(("Expires", "3600"),)),
        peer.last_from,
    )
    for adaptive in (False, True):
        delivered.clear()
        first_version = 1 if not adaptive else count + 1
        sent: dict[int, int] = {}
        done = threading.Event()
        thread = threading.Thread(
            target=_notifier, args=(peer, stack, subscribe, first_version, count, sent, done)
        )
        thread.start()
        deadline = time.monotonic() + count * 0.02 + 5
        stack.run(
            lambda done=done, deadline=deadline: (
                (done.is_set() and len(delivered) >= count) or time.monotonic() > deadline
            ),
            adaptive,
        )
        thread.join()
        wire = [(at - sent[n.document.version]) / 1e6 for at, n in delivered]
        ours = [(at - n.received_ns) / 1e6 for at, n in delivered]
        mode = "core pump 3/20 ms" if adaptive else "pump every 1 ms"
        print(
            f"NOTIFY → typed event ({mode}): n={len(wire)}/{count} "
            f"p50 {pct(wire, 50):.2f} ms, p99 {pct(wire, 99):.2f} ms, max {max(wire):.2f} ms; "
            f"hook → callback p50 {pct(ours, 50):.3f} ms, p99 {pct(ours, 99):.3f} ms"
        )
    peer.close()


def _notifier(
    peer: UdpSipPeer,
    stack: Stack,
    subscribe: SipMessage,
    first_version: int,
    count: int,
    sent: dict[int, int],
    done: threading.Event,
) -> None:
    """The notifier's thread: `count` NOTIFYs 10 ms apart, send times in `sent`."""
    for version in range(first_version, first_version + count):
        message = peer.request(
            "NOTIFY",
            stack.me,
            call_id=subscribe.call_id,
            from_tag="f1",
            to=subscribe.require("from"),
            cseq=version,
            headers=(("Event", "conference"), ("Subscription-State", "active;expires=3600")),
            body=CONFERENCE.format(version=version).encode(),
            content_type="application/conference-info+xml",
        )
        sent[version] = time.perf_counter_ns()
        peer.send(message, ("127.0.0.1", stack.port))
        time.sleep(0.010)
    done.set()


def bench_refresh(stack: Stack, subscriptions: int, window: float) -> None:
    users = {f"u{i:03d}": "pw" for i in range(subscriptions)}
    with Kamailio(extra_users={"bench": "benchpw", **users}) as server:
        stack.subscriber.identity = identity(server, "bench", stack.port)
        rss_idle = rss_mib()
        cpu_idle = cpu_seconds()
        start = time.monotonic()
        stack.run(lambda: time.monotonic() - start > window)  # the idle baseline
        cpu_idle = cpu_seconds() - cpu_idle
        received: list[Notification] = []
        for name in users:
            stack.subscriber.subscribe("presence", server.uri(name), received.append, expires=20)
        settle = time.monotonic()
        stack.run(lambda: time.monotonic() - settle > 5)
        live = sum(
            1 for s in stack.subscriber.subscriptions if s.state.value in ("active", "pending")
        )
        cpu_loaded = cpu_seconds()
        loaded_start = time.monotonic()
        stack.run(lambda: time.monotonic() - loaded_start > window)
        cpu_loaded = cpu_seconds() - cpu_loaded
        rss_loaded = rss_mib()
        print(
            f"{subscriptions} subscriptions (expires 20 s, {live} live, {len(received)} NOTIFYs): "
            f"RSS {rss_idle:.1f} → {rss_loaded:.1f} MiB (+{rss_loaded - rss_idle:.1f}); "
            f"CPU idle {100 * cpu_idle / window:.2f}% → loaded {100 * cpu_loaded / window:.2f}% "
            f"of a core over {window:.0f} s"
        )
        stack.finish(stack.subscriber.close(timeout=3.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifies", type=int, default=500)
    parser.add_argument("--subscriptions", type=int, default=200)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    stack = Stack()
    try:
        bench_latency(stack, args.notifies)
        bench_refresh(stack, args.subscriptions, args.window)
    finally:
        stack.close()


if __name__ == "__main__":
    main()
