"""Benchmarks of the phone core, with baresip measured side by side.

- press → INVITE: a contact-button press sent on the control socket until the
  INVITE arrives at a raw UDP callee, which answers 486 (the phone hangs up in
  between); p50/p99 over N presses. Both ends read CLOCK_MONOTONIC, which is
  system-wide on Linux.
- start → registered: process spawn until the "registered" line on its
  console, for `phone run` and for baresip, against the same Kamailio.
- idle RSS and CPU after registration, for both.

Run: python bench/core.py [--presses 200] [--starts 10]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import idle_cpu_percent, machine, pct, rss_mib  # noqa: E402
from phone.remote import PhoneExitError, RemotePhone, describe_exit  # noqa: E402
from tests.peers.baresip import Baresip  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.peers.ports import free_port  # noqa: E402
from tests.phones import account, no_calls, render_config  # noqa: E402


class BusyCallee:
    """A raw SIP UDP endpoint that timestamps each INVITE and answers 486."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.invites: list[float] = []
        self.arrived = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            data, addr = self.sock.recvfrom(65536)
            now = time.monotonic()
            text = data.decode(errors="replace")
            if not text.startswith("INVITE "):
                continue
            headers = [h for h in text.split("\r\n\r\n", 1)[0].split("\r\n")[1:] if h]
            keep = [h for h in headers if re.match(r"(?i)(via|from|call-id|cseq|v|f|i):", h)]
            to = next(h for h in headers if re.match(r"(?i)(to|t):", h))
            response = "\r\n".join(
                ["SIP/2.0 486 Busy Here", *keep, f"{to};tag=bench", "Content-Length: 0", "", ""]
            )
            self.sock.sendto(response.encode(), addr)
            with self.arrived:
                self.invites.append(now)
                self.arrived.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> float:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.invites) >= count, timeout):
                raise TimeoutError("no INVITE")
            return self.invites[count - 1]


def press_to_invite(workdir: Path, presses: int) -> list[float]:
    callee = BusyCallee()
    config = render_config(
        {"uri": f"sip:alice@127.0.0.1:{free_port()}"},
        [("Busy", f"sip:busy@127.0.0.1:{callee.port}")],
        workdir,
        "press",
    )
    phone = RemotePhone("press", config, workdir, log_level="WARNING").start()
    latencies = []
    try:
        for i in range(1, presses + 1):
            sent = time.monotonic()
            phone.press("contact-1")
            latencies.append(callee.wait(i) - sent)
            phone.wait_for(no_calls, what="hung up")
    finally:
        phone.stop()
    return latencies


def start_phone(config: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Spawn `phone run`; return it and the seconds until it logged "registered"."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "phone", "--log-level", "INFO", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"registered as" in line:
            took = time.monotonic() - started
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining
            return proc, took
    raise RuntimeError(f"phone exited {proc.wait()} before registering")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    code = proc.wait(10)
    if code != 0:
        raise PhoneExitError(f"phone exited with {describe_exit(code)} on SIGTERM")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--starts", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp, Kamailio() as server:
        workdir = Path(tmp)
        lat = press_to_invite(workdir, args.presses)
        print(
            f"press -> INVITE on the wire ({len(lat)} presses): "
            f"p50 {1000 * statistics.median(lat):.2f} ms, p99 {1000 * pct(lat, 99):.2f} ms, "
            f"max {1000 * max(lat):.2f} ms"
        )
        config = render_config(
            account(server, "alice"), [("Bob", server.uri("bob"))], workdir, "reg"
        )
        ours, theirs = [], []
        rss_ours = rss_theirs = cpu_ours = cpu_theirs = 0.0
        for run in range(args.starts):
            proc, took = start_phone(config)
            ours.append(took)
            if run == 0:
                time.sleep(3)
                rss_ours = rss_mib(proc.pid)
                cpu_ours = idle_cpu_percent(proc.pid)
            stop(proc)
            peer = Baresip("bob", server)
            peer.start()
            assert peer.started_at is not None
            theirs.append(peer.wait_registered() - peer.started_at)
            if run == 0:
                assert peer.pid is not None
                time.sleep(3)
                rss_theirs = rss_mib(peer.pid)
                cpu_theirs = idle_cpu_percent(peer.pid)
            peer.close()
    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    print(
        f"start -> registered ({args.starts} starts): simplephone median {1000 * m_ours:.0f} ms "
        f"(max {1000 * max(ours):.0f}); baresip median {1000 * m_theirs:.0f} ms "
        f"(max {1000 * max(theirs):.0f}); ratio {m_ours / m_theirs:.1f}x"
    )
    print(
        f"idle RSS: simplephone {rss_ours:.1f} MiB, baresip {rss_theirs:.1f} MiB, "
        f"ratio {rss_ours / rss_theirs:.1f}x"
    )
    print(f"idle CPU over 10 s: simplephone {cpu_ours:.2f}% of a core, baresip {cpu_theirs:.2f}%")


if __name__ == "__main__":
    main()
