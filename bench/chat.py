"""Benchmark of the chat plugin in a whole phone (the protocol alone is
`bench/msrp.py`).

- SEND at the peer → text on the screen: a Blink-style peer
  (`tests/chat/blink_peer.py`) holds one chat-only session with a phone in
  direct mode and sends CPIM texts one at a time; each is timed from
  `send_message` until the control interface's `screen` shows it (the
  figure includes up to one `state` round trip and 0.5 ms poll gap).
- The idle phone with the chat plugin on and off: RSS after start, and CPU
  over 10 s.

    python bench/chat.py [--messages N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import idle_cpu_percent, machine, pct, rss_mib  # noqa: E402
from phone.demo import free_port  # noqa: E402
from phone.remote import RemotePhone  # noqa: E402
from tests.chat.blink_peer import BlinkPeer  # noqa: E402
from tests.phones import render_config  # noqa: E402

SETTLE_S = 3.0  # after start, before RSS and CPU are read
POLL_S = 0.0005  # between `state` polls, so the poll does not starve the phone


def start(workdir: Path, name: str, chat: bool) -> tuple[RemotePhone, str, int]:
    port = free_port()
    uri = f"sip:{name}@127.0.0.1:{port}"
    plugins = {"chat": {} if chat else {"enabled": False}}
    config = render_config({"uri": uri}, [("Alice", "sip:alice@127.0.0.1")], workdir, name,
                           plugins=plugins)  # fmt: skip
    return RemotePhone(name, config, workdir, log_level="WARNING").start(), uri, port


def shown(phone: RemotePhone, text: str) -> None:
    while not any(text in line for line in phone.state()["screen"]):
        time.sleep(POLL_S)


async def send_to_screen(workdir: Path, count: int) -> list[float]:
    phone, uri, port = start(workdir, "latency", chat=True)
    peer = BlinkPeer("alice", "", "127.0.0.1", ("127.0.0.1", port))
    await peer.start()
    latencies = []
    try:
        call = await peer.chat(uri)
        for index in range(count):
            text = f"m{index:05d} on my way"
            sent = time.perf_counter()
            await peer.send_text(call, text, uri)
            await asyncio.to_thread(shown, phone, text)
            latencies.append((time.perf_counter() - sent) * 1000)
    finally:
        await peer.close()
        phone.stop()
    return latencies


def idle(workdir: Path, chat: bool) -> tuple[float, float]:
    phone, _, _ = start(workdir, f"idle{int(chat)}", chat)
    try:
        assert phone.process is not None
        time.sleep(SETTLE_S)
        return rss_mib(phone.process.pid), idle_cpu_percent(phone.process.pid)
    finally:
        phone.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ms = asyncio.run(send_to_screen(workdir, args.messages))
        print(
            f"SEND → screen over {len(ms)} messages: p50 {statistics.median(ms):.2f} ms, "
            f"p99 {pct(ms, 99):.2f} ms, max {max(ms):.2f} ms (target p99 < 20 ms)"
        )
        for chat in (False, True):
            rss, cpu = idle(workdir, chat)
            print(
                f"idle, chat plugin {'on' if chat else 'off'}: RSS {rss:.1f} MiB, CPU {cpu:.2f} %"
            )


if __name__ == "__main__":
    main()
