"""Benchmarks of the phone core, with baresip measured side by side.

- press → INVITE: a contact-button press sent on the control socket until the
  INVITE arrives at a raw UDP callee, which answers 486 (the phone hangs up in
  between), presses 50 ms apart; p50/p99 over N presses. Both ends read CLOCK_MONOTONIC, which is
  system-wide on Linux.
- start → registered, two ways: process spawn until the "registered" line on
  its console (also for baresip, against the same Kamailio), with the CPU time
  the phone used until then (less at the mercy of the machine's load), and
  process spawn until the control interface answers `registered: true`
  (polled every 2 ms), then the longest wait for a `state` answer until the
  phone has started (the event loop held by the start's work: the plugins'
  imports, say). `--starts-only` measures these alone, and
  `--phone-python` runs the phone on another interpreter (a venv with a
  non-editable install, as on the SD image), from a directory outside the
  checkout.
- idle CPU and memory after registration: every built-in plugin on, presence
  with two contacts, the registrar watch querying every 5 s. CPU per thread
  (schedstat) with its wake-ups a second; RSS, PSS and USS (smaps_rollup),
  with a table of what each plugin and TLS add, and one of what each import
  adds.
- RTP in a call: two phones in direct mode sending tones to each other for
  `--call-s`; packets received against the 50 a second sent, the receive
  jitter pjmedia measures (RFC 3550, mean and max) on each side, and the
  caller's CPU per thread during the call.

Run: python bench/core.py [--presses 200] [--starts 10] [--idle-s 20] [--call-s 10]
     python bench/core.py --starts-only [--starts 10] [--phone-python VENV/bin/python]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    idle_cpu_percent,
    live_threads_cpu_seconds,
    machine,
    memory_mib,
    pct,
    rss_mib,
    thread_cpu,
)
from phone.control import ControlClient  # noqa: E402
from phone.demo import write_tone  # noqa: E402
from phone.remote import PhoneExitError, RemotePhone, describe_exit  # noqa: E402
from tests.peers.baresip import Baresip  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.peers.ports import free_port  # noqa: E402
from tests.phones import account, has_call, no_calls, render_config  # noqa: E402


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
            time.sleep(PRESS_GAP_S)
    finally:
        phone.stop()
    return latencies


def print_threads(title: str, rows: list[tuple[str, float, float]]) -> None:
    print(title)
    print("| thread | % of a core | wake-ups/s |")
    print("|---|---|---|")
    for name, share, wakeups in rows:
        print(f"| {name} | {share:.2f} | {wakeups:.1f} |")


def call_rtp(workdir: Path, seconds: float) -> None:
    """Two direct-mode phones in a call for `seconds`: RTP received, its jitter, CPU."""
    ports = {name: free_port() for name in ("alice", "bob")}
    uris = {name: f"sip:{name}@127.0.0.1:{port}" for name, port in ports.items()}
    phones = {}
    for me, other, freq in (("alice", "bob", 440.0), ("bob", "alice", 660.0)):
        mic = workdir / f"{me}-rtp-mic.wav"
        write_tone(mic, freq)
        config = render_config(
            {"uri": uris[me]}, [(other.title(), uris[other])], workdir, f"{me}-rtp", mic=mic
        )
        phones[me] = RemotePhone(me, config, workdir, log_level="WARNING").start()
    alice, bob = phones["alice"], phones["bob"]
    try:
        alice.press("contact-1")
        bob.wait_for(has_call("ringing"), what="bob rings")
        bob.press("answer")
        alice.wait_for(has_call("confirmed"), what="confirmed")
        time.sleep(1)  # past the call's first packets
        before = {name: phone.state()["calls"][0]["rtp_rx"] for name, phone in phones.items()}
        assert alice.process is not None
        rows = thread_cpu(alice.process.pid, seconds)
        for name, phone in phones.items():
            call = phone.state()["calls"][0]
            received = call["rtp_rx"] - before[name]
            print(
                f"RTP in a call, {name}: {received} packets received in {seconds:.0f} s "
                f"({received / seconds:.1f}/s of 50), receive jitter mean "
                f"{call['rtp_jitter_ms']:.2f} ms, max {call['rtp_jitter_max_ms']:.2f} ms "
                "(whole call)"
            )
        print_threads(f"caller's CPU per thread in the call ({seconds:.0f} s):", rows)
        alice.press("end")
        alice.wait_for(no_calls, what="hung up")
    finally:
        for phone in phones.values():
            code = phone.stop()
            if code != 0:
                raise PhoneExitError(f"phone {phone.name} exited with {describe_exit(code)}")


# pjmedia frees a call's sockets 500 ms after it ends, and the phone refuses a
# call it has no sockets for (phone/sip/admission.py): presses at the phone's
# own pace (a call every ~15 ms) run out of them after 15 calls.
PRESS_GAP_S = 0.05
PLUGINS = ("call_log", "chat", "conference", "presence", "xcap")  # the built-in ones
# What a phone imports, in the order it does, for the import table (each step
# after those before it; the plugins last, as the phone loads them).
IMPORT_STEPS = (
    ("CPython", ""),
    ("asyncio", "import asyncio"),
    ("pjsua2 (SWIG module)", "import pjsua2"),
    (
        "phone core (config, board, screen with PIL and luma, SIP, control)",
        "import phone.cli, phone.phone, phone.control",
    ),
    ("SIP services, payload parsers (lxml), plugin API", "import phone.api"),
    *((f"plugin {name}", f"import plugins.{name}") for name in PLUGINS),
)


def import_costs() -> list[tuple[str, float]]:
    """RSS after each of IMPORT_STEPS, in a fresh interpreter."""
    code = "\n".join(
        [
            "import sys",
            "def rss():",
            "    for line in open('/proc/self/status'):",
            "        if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024",
            *(f"{stmt}\nprint(rss(), flush=True)" for _, stmt in IMPORT_STEPS),
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    return [(label, float(value)) for (label, _), value in zip(IMPORT_STEPS, out, strict=True)]


def start_phone(
    config: Path, python: str = sys.executable
) -> tuple[subprocess.Popen[bytes], float, float]:
    """Spawn `phone run` on `python`, in the config's directory (so `-m phone` is
    the installed package, not the checkout's); return it, the seconds until it
    logged "registered" and the CPU seconds it had used by then."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [python, "-m", "phone", "--log-level", "INFO", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=config.parent,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"registered as" in line:
            took = time.monotonic() - started
            cpu = live_threads_cpu_seconds(proc.pid)
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining
            return proc, took, cpu
    raise RuntimeError(f"phone exited {proc.wait()} before registering")


def starts_only(config: Path, starts: int, python: str) -> None:
    """start → registered alone, `starts` times each way (to the log line, to the
    control interface), alternating."""
    took, cpu, outside, held = [], [], [], []
    for _ in range(starts):
        proc, seconds, cpu_seconds = start_phone(config, python)
        took.append(seconds)
        cpu.append(cpu_seconds)
        stop(proc)
        proc, seconds, held_seconds = start_watched(config, config.parent, python)
        outside.append(seconds)
        held.append(held_seconds)
        stop(proc)
    print(
        f"start -> registered ({starts} starts, {python}): median "
        f"{1000 * statistics.median(took):.0f} ms (max {1000 * max(took):.0f}) to its log line; "
        f"CPU until then median {1000 * statistics.median(cpu):.0f} ms "
        f"(max {1000 * max(cpu):.0f}); to `registered` on the control interface median "
        f"{1000 * statistics.median(outside):.0f} ms (max {1000 * max(outside):.0f}); "
        f"then the longest wait for a `state` answer until started median "
        f"{1000 * statistics.median(held):.0f} ms (max {1000 * max(held):.0f}); "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def start_watched(
    config: Path, workdir: Path, python: str = sys.executable
) -> tuple[subprocess.Popen[bytes], float, float]:
    """Spawn `phone run --control` on `python` (in the config's directory, as
    `start_phone`); return it, the seconds until the control interface says it
    is registered, and the longest a `state` request then waited for its answer
    until the phone said it had started (plugins loaded): how long the start's
    work held the event loop."""
    address = workdir / "bench.sock"
    address.unlink(missing_ok=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        [python, "-m", "phone", "run", "--config", str(config)] + ["--control", f"unix:{address}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=config.parent,
    )
    client: ControlClient | None = None
    registered: float | None = None
    held = 0.0
    while time.monotonic() - started < 15:
        if proc.poll() is not None:
            raise RuntimeError(f"phone exited {proc.returncode} before it started")
        try:
            client = client or ControlClient(f"unix:{address}")
            asked = time.monotonic()
            state = client.state()
            if registered is not None:
                held = max(held, time.monotonic() - asked)
            elif state["registered"]:
                registered = time.monotonic() - started
            if registered is not None and state["started"]:
                client.close()
                return proc, registered, held
        except OSError:
            client = None
        time.sleep(0.002)
    raise RuntimeError("phone did not start within 15 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    code = proc.wait(10)
    if code != 0:
        raise PhoneExitError(f"phone exited with {describe_exit(code)} on SIGTERM")


def idle_memory(config: Path) -> tuple[float, float, float]:
    """RSS, PSS, USS of a phone 3 s after it registered."""
    proc, _, _ = start_phone(config)
    try:
        time.sleep(3)
        return memory_mib(proc.pid)
    finally:
        stop(proc)


def memory_table(server: Kamailio, tls_server: Kamailio, workdir: Path) -> None:
    contacts = [("Bob", server.uri("bob")), ("Carol", server.uri("carol"))]

    def config(name: str, on: tuple[str, ...], tls: bool = False) -> Path:
        acc = account(server, "alice")
        if tls:
            acc = {
                **account(tls_server, "alice"),
                "registrar": f"sip:127.0.0.1:{tls_server.tls_port};transport=tls",
                "transport": "tls",
                "tls_ca_file": str(tls_server.tls_certificate),
            }
            contacts_here = [("Bob", tls_server.uri("bob")), ("Carol", tls_server.uri("carol"))]
        else:
            contacts_here = contacts
        off = {name: {"enabled": False} for name in PLUGINS if name not in on}
        return render_config(acc, contacts_here, workdir, name, plugins=off)

    base = idle_memory(config("none", ()))
    rows = [("no plugins, UDP", base)]
    for name in PLUGINS:
        rows.append((f"only {name}", idle_memory(config(name, (name,)))))
    rows.append(("every plugin, UDP", idle_memory(config("all", PLUGINS))))
    rows.append(("every plugin, TLS", idle_memory(config("all-tls", PLUGINS, tls=True))))
    print("idle memory after registration, MiB (two contacts):")
    print("| phone | RSS | PSS | USS | RSS over no plugins |")
    print("|---|---|---|---|---|")
    for label, (rss, pss, uss) in rows:
        print(f"| {label} | {rss:.1f} | {pss:.1f} | {uss:.1f} | {rss - base[0]:+.1f} |")
    print("RSS after each import, MiB (a fresh interpreter):")
    print("| import | RSS | added |")
    print("|---|---|---|")
    before = 0.0
    for label, rss in import_costs():
        print(f"| {label} | {rss:.1f} | {rss - before:+.1f} |")
        before = rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--call-s", type=float, default=10.0)
    parser.add_argument("--starts-only", action="store_true", help="only start -> registered")
    parser.add_argument(
        "--phone-python", default=sys.executable, help="the interpreter the phone runs on"
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.starts_only:
        with tempfile.TemporaryDirectory() as tmp, Kamailio() as server:
            contacts = [("Bob", server.uri("bob")), ("Carol", server.uri("carol"))]
            config = render_config(account(server, "alice"), contacts, Path(tmp), "reg")
            starts_only(config, args.starts, args.phone_python)
        return
    with (
        tempfile.TemporaryDirectory() as tmp,
        Kamailio() as server,
        Kamailio(tls=True) as tls_server,
    ):
        workdir = Path(tmp)
        lat = press_to_invite(workdir, args.presses)
        print(
            f"press -> INVITE on the wire ({len(lat)} presses): "
            f"p50 {1000 * statistics.median(lat):.2f} ms, p99 {1000 * pct(lat, 99):.2f} ms, "
            f"max {1000 * max(lat):.2f} ms"
        )
        contacts = [("Bob", server.uri("bob")), ("Carol", server.uri("carol"))]
        config = render_config(account(server, "alice"), contacts, workdir, "reg")
        call_rtp(workdir, args.call_s)
        ours, ours_cpu, outside, theirs = [], [], [], []
        rss_theirs = cpu_ours = cpu_theirs = 0.0
        threads: list[tuple[str, float, float]] = []
        memory = (0.0, 0.0, 0.0)
        for run in range(args.starts):
            proc, took, cpu = start_phone(config)
            ours.append(took)
            ours_cpu.append(cpu)
            if run == 0:
                time.sleep(3)
                memory = memory_mib(proc.pid)
                threads = thread_cpu(proc.pid, args.idle_s)
                cpu_ours = sum(share for _, share, _ in threads)
            stop(proc)
            proc, took, _ = start_watched(config, workdir)
            outside.append(took)
            stop(proc)
            peer = Baresip("bob", server)
            peer.start()
            assert peer.started_at is not None
            theirs.append(peer.wait_registered() - peer.started_at)
            if run == 0:
                assert peer.pid is not None
                time.sleep(3)
                rss_theirs = rss_mib(peer.pid)
                cpu_theirs = idle_cpu_percent(peer.pid, args.idle_s)
            peer.close()
        m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
        print(
            f"start -> registered ({args.starts} starts): simplephone median "
            f"{1000 * m_ours:.0f} ms (max {1000 * max(ours):.0f}) to its log line "
            f"(CPU median {1000 * statistics.median(ours_cpu):.0f} ms), "
            f"{1000 * statistics.median(outside):.0f} ms (max {1000 * max(outside):.0f}) "
            f"to `registered` on the control interface; baresip median "
            f"{1000 * m_theirs:.0f} ms (max {1000 * max(theirs):.0f}); ratio {m_ours / m_theirs:.1f}x"
        )
        rss, pss, uss = memory
        print(
            f"idle memory: simplephone RSS {rss:.1f} MiB, PSS {pss:.1f}, USS {uss:.1f}; "
            f"baresip RSS {rss_theirs:.1f} MiB, ratio {rss / rss_theirs:.1f}x"
        )
        print(
            f"idle CPU over {args.idle_s:.0f} s: simplephone {cpu_ours:.2f}% of a core, "
            f"baresip {cpu_theirs:.2f}%"
        )
        print_threads("simplephone's idle CPU per thread:", threads)
        memory_table(server, tls_server, workdir)


if __name__ == "__main__":
    main()
