"""Benchmark of the MSRP stack (`phone.msrp`), protocol figures only.

- SEND → delivered: from `send_message` of a CPIM chat message to the
  receiving session's `on_message` (chunk parsed, 200 sent, message handed
  over), p50/p99 over N messages, one at a time, on loopback TCP; and the
  same through Kamailio's MSRP relay when Kamailio is installed.
- A 10 MB file over loopback (64 kB chunks) into a `FileSink` on disk:
  throughput, and the growth of this process's RSS (sender and receiver both
  run here), which must stay small because nothing holds the whole file.

    python bench/msrp.py [--messages N] [--file-mb M]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phone.msrp.chunks import FileSink  # noqa: E402
from phone.msrp.endpoint import MsrpEndpoint  # noqa: E402
from phone.msrp.relay import MsrpRelayClient  # noqa: E402
from phone.msrp.session import MsrpSession  # noqa: E402
from phone.msrp.uri import MsrpUri  # noqa: E402
from phone.payloads import cpim  # noqa: E402
from phone.sip.digest import Credentials  # noqa: E402


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def chat_body(index: int) -> bytes:
    return cpim.build(
        cpim.CpimMessage(
            content_type="text/plain",
            body=f"Message {index}: on my way, see you in ten minutes".encode(),
            sender=cpim.Identity("sip:alice@example.test", "Alice"),
            recipients=(cpim.Identity("sip:bob@example.test"),),
            timestamp=datetime.now(UTC),
        )
    )


async def latencies(a: MsrpSession, b: MsrpSession, count: int) -> list[float]:
    arrived: asyncio.Queue[float] = asyncio.Queue()
    b.on_message = lambda _message: arrived.put_nowait(time.perf_counter())
    results = []
    for index in range(count + 20):
        body = chat_body(index)
        started = time.perf_counter()
        await a.send_message("message/cpim", body)
        delivered = await arrived.get()
        if index >= 20:  # warm-up
            results.append((delivered - started) * 1000)
    return results


async def direct_pair(
    **b_options: Any,
) -> tuple[MsrpEndpoint, MsrpEndpoint, MsrpSession, MsrpSession]:
    alice, bob = MsrpEndpoint(), MsrpEndpoint()
    await alice.listen()
    await bob.listen()
    a_uri, b_uri = alice.new_uri(), bob.new_uri()
    a = alice.session(a_uri, (b_uri,))
    b = bob.session(b_uri, (a_uri,), **b_options)
    await asyncio.gather(a.start(active=True), b.start(active=False))
    return alice, bob, a, b


async def file_transfer(megabytes: int, directory: Path) -> tuple[float, int]:
    source = directory / "source.bin"
    with open(source, "wb") as out:
        for _ in range(megabytes):
            out.write(os.urandom(1 << 20))
    target = directory / "target.bin"
    size = megabytes << 20
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    alice, bob, a, b = await direct_pair(
        sink_factory=lambda _frame: FileSink(target, size),
        max_message_bytes=size,
        on_message=lambda _message: done.set_result(None),
    )
    before = rss_kib()
    started = time.perf_counter()
    await a.send_file(source, "application/octet-stream")
    await done
    elapsed = time.perf_counter() - started
    growth = rss_kib() - before
    assert target.stat().st_size == size
    await alice.close()
    await bob.close()
    return size / elapsed / 1e6, growth


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"{name}: p50 {statistics.median(values):.2f} ms, p99 {p99:.2f} ms, max {values[-1]:.2f} ms (n={len(values)})"


async def relayed(count: int) -> str:
    from tests.peers.kamailio import Kamailio, kamailio_binary

    if kamailio_binary() is None:
        return "through Kamailio's relay: skipped (kamailio is not installed)"
    with Kamailio() as server:
        relay = MsrpUri.parse(server.msrp_relay_uri)
        alice, bob = MsrpEndpoint(), MsrpEndpoint()
        ra = MsrpRelayClient(alice, relay, Credentials("alice", "alicepw"))
        rb = MsrpRelayClient(bob, relay, Credentials("bob", "bobpw"))
        await ra.connect()
        await rb.connect()
        a_uri = ra.new_uri()
        b = rb.session((*ra.use_path, a_uri))
        a = ra.session(b.local_path, local_uri=a_uri)
        await asyncio.gather(a.start(active=True), b.start(active=False))
        line = summary("SEND → delivered through Kamailio's relay", await latencies(a, b, count))
        await ra.close()
        await rb.close()
        await alice.close()
        await bob.close()
        return line


async def main(messages: int, file_mb: int) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}")  # fmt: skip
    alice, bob, a, b = await direct_pair()
    print(summary("SEND → delivered, loopback TCP", await latencies(a, b, messages)))
    await alice.close()
    await bob.close()
    print(await relayed(messages))
    with tempfile.TemporaryDirectory() as directory:
        rate, growth = await file_transfer(file_mb, Path(directory))
    print(f"{file_mb} MB file to disk: {rate:.1f} MB/s, RSS growth {growth / 1024:.2f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--file-mb", type=int, default=10)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.messages, arguments.file_mb))
