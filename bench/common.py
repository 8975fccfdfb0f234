"""What every bench script shares: the machine line, percentiles, process
figures from /proc, and this process's own pjsua in poll mode.

Each script is run from the repo root as `python bench/X.py` (`make bench`)
and puts the root on sys.path before it imports this module.
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
from pathlib import Path

from tests.sip.stack import LoopClient, loopback_transport, poll_endpoint, request_hook

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine() -> str:
    """The machine the figures come from, and how loaded it was at the start."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("model name", "Model")):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {cpu}, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.2f} at start"
    )


def pct(values: list[float], q: float) -> float:
    """The `q`th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def memory_mib(pid: int | str = "self") -> tuple[float, float, float]:
    """RSS, PSS and USS (private pages) of a process, MiB (/proc/PID/smaps_rollup)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    uss = fields["Private_Clean"] + fields["Private_Dirty"]
    return fields["Rss"] / 1024, fields["Pss"] / 1024, uss / 1024


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def idle_cpu_percent(pid: int, seconds: float = 10.0) -> float:
    """The share of a core a process uses over `seconds`."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / seconds


def _threads(pid: int) -> dict[int, tuple[str, float, int]]:
    """Each live thread of a process: tid -> (name, CPU seconds, context switches).

    CPU comes from schedstat (nanoseconds; /proc's stat counts 10 ms ticks)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            cpu_ns = int((task / "schedstat").read_text().split()[0])
            status = (task / "status").read_text().splitlines()
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        switches = sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        out[int(task.name)] = (name, cpu_ns / 1e9, switches)
    return out


def live_threads_cpu_seconds(pid: int) -> float:
    """CPU time so far of a process's live threads (schedstat's nanoseconds, not
    stat's 10 ms ticks: a start-up's 200 ms would be 20 ticks)."""
    return sum(cpu for _, cpu, _ in _threads(pid).values())


def thread_cpu(pid: int, seconds: float) -> list[tuple[str, float, float]]:
    """Per thread of a process over `seconds`: (name, % of a core, wake-ups a
    second, counted as context switches). The main thread is named "main";
    a thread that ended meanwhile is left out."""
    before = _threads(pid)
    started = time.monotonic()
    time.sleep(seconds)
    after = _threads(pid)
    took = time.monotonic() - started
    rows = []
    for tid, (name, cpu, switches) in sorted(after.items()):
        cpu0, switches0 = before.get(tid, (name, 0.0, 0))[1:]
        label = "main" if tid == pid else name
        rows.append((label, 100 * (cpu - cpu0) / took, (switches - switches0) / took))
    return rows


class PollStack(LoopClient):
    """pjsua in poll mode in this process, with one UDP transport and the request hook."""

    def __init__(self) -> None:
        import pjsua2 as pj

        ep = poll_endpoint()
        _, port = loopback_transport(ep, pj.PJSIP_TRANSPORT_UDP)
        super().__init__(ep, request_hook(ep), port)

    def pump(self) -> None:
        """Finer than the tests' pump: what is timed waits at most half a millisecond."""
        self.ep.libHandleEvents(0)
        self.loop.run_until_complete(asyncio.sleep(0.0005))

    def close(self) -> None:
        self.loop.close()
        self.raw.close()
        self.ep.libDestroy()
