"""Benchmarks of the conference plugin (plugins/conference/) with the test focus.

1. Join → roster on the screen: alice, a whole phone in a child process,
   presses the Team room's button; the focus (phone/demo_focus.py, through
   Kamailio) answers with `isfocus`, alice subscribes and draws the first
   roster. From the press (this process, `time.perf_counter_ns`) to the draw
   (alice's log, same CLOCK_MONOTONIC), then `end`; repeated.
2. A partial NOTIFY → the screen: the focus adds and removes a guest; alice
   logs each NOTIFY's arrival and the roster drawn after it (our share: SIP,
   conference-info parse and merge, the panel, the screen).
3. A 200-participant roster, in this process: parse, merge of a partial
   update into it, the panel drawn on a luma dummy device, and the RSS growth
   over 1000 merges.
4. The plugin at rest: alice's CPU and RSS over 30 s in a room, against bob
   in a plain call to the same room with `[plugins.conference] enabled =
   false` (the difference is the plugin: subscription, roster, redraws).

Run: chrt -f 20 python bench/conference.py [--joins 100] [--changes 300]
(as root, SCHED_FIFO, inherited by Kamailio, the focus and the phone: on a
shared machine the other jobs' load otherwise sets the tail). alice has the
chat plugin on, so each room INVITE carries an MSRP chat stream too.
Targets (issue 11): join → roster p99 < 100 ms on loopback; partial NOTIFY →
screen p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from luma.core.device import dummy  # noqa: E402

from phone.demo_focus import Focus, focus_users  # noqa: E402
from phone.payloads import conference  # noqa: E402
from phone.payloads.sequence import DocumentState  # noqa: E402
from phone.remote import RemotePhone  # noqa: E402
from phone.screen import Screen  # noqa: E402
from plugins.conference import view  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.phones import render_config  # noqa: E402

DRAWN = re.compile(
    r"conference \S+: roster of (\d+) drawn at (\d+) ns; NOTIFY at (\d+) ns, drawn ([\d.]+) ms later"
)
ROOMS = {"team": "Team meeting"}
JOIN_PACE_S = 0.1
"""Between a leave and the next join. A room call with chat holds 4 of pjmedia's
64 socket keys until 0.5 s after it ends (phone/sip/admission.py); joins back to
back (15 ms each at SCHED_FIFO) ran out of them after 15 and the phone rightly
refused the 16th call ("no free media sockets")."""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class LogTail:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def drawn(self) -> list[tuple[int, int, int, float]]:
        """New roster draws: (people, drawn ns, NOTIFY ns, ms between)."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        found = []
        for line in data[:cut].decode(errors="replace").splitlines():
            match = DRAWN.search(line)
            if match:
                found.append((int(match[1]), int(match[2]), int(match[3]), float(match[4])))
        return found

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[int, int, int, float]]:
        seen: list[tuple[int, int, int, float]] = []
        deadline = time.monotonic() + timeout
        while len(seen) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(seen)} of {count} roster draws in {self.path}")
            seen += self.drawn()
            time.sleep(0.0005)
        return seen


def start_phone(server: Kamailio, workdir: Path, user: str, enabled: bool = True) -> RemotePhone:
    plugin = {
        "enabled": enabled,
        "rooms": [{"name": "Team", "uri": server.uri("team")}],
    }
    account = {
        "uri": server.uri(user),
        "password": server.users[user],
        "registrar": server.registrar_uri,
    }
    contacts = [] if enabled else [("Team", server.uri("team"))]  # a plain call to the room
    config = render_config(
        account,
        contacts,
        workdir,
        user,
        plugins={"conference": plugin, "presence": {"enabled": False}},
    )
    phone = RemotePhone(user, config, workdir, log_level="DEBUG").start()
    phone.wait_for(lambda s: s["registered"], what=f"{user} registered")
    return phone


def proc_figures(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and RSS (MiB) of process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss / 2**20


def joins(alice: RemotePhone, tail: LogTail, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        tail.drawn()
        pressed = time.perf_counter_ns()
        alice.press("contact-1")
        (_, drawn_ns, _, _), *_ = tail.wait(1)
        latencies.append((drawn_ns - pressed) / 1e6)
        alice.press("end")
        alice.wait_for(lambda s: not s["calls"] and s["conference"] is None, what="left")
        time.sleep(JOIN_PACE_S)
    return latencies


def partials(alice: RemotePhone, tail: LogTail, focus: Focus, count: int) -> list[float]:
    alice.press("contact-1")
    tail.wait(1)
    ours = []
    for i in range(count):
        entity = f"sip:guest{i}@example.test"
        focus.add_guest("team", entity, f"Guest {i}")
        ours.append(tail.wait(1)[0][3])
        focus.remove_guest("team", entity)
        ours.append(tail.wait(1)[0][3])
    return ours


def big_roster(people: int) -> None:
    users = tuple(
        conference.User(
            entity=f"sip:user{i}@example.test",
            display_text=f"User {i}",
            endpoints=(
                conference.Endpoint(
                    entity=f"sip:user{i}@example.test",
                    status=conference.EndpointStatus.CONNECTED,
                    joining_method=conference.JoiningMethod.DIALED_IN,
                    media=(conference.Media(id="1", type="audio"),),
                ),
            ),
        )
        for i in range(people)
    )
    entity = "sip:team@example.test"
    full = conference.build(conference.ConferenceInfo(entity, 1, DocumentState.FULL, users=users))
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        document = conference.parse(full)
    parse_ms = (time.perf_counter() - started) / rounds * 1e3
    state = conference.merge(None, document)
    partial = conference.parse(
        conference.build(
            conference.ConferenceInfo(
                entity,
                2,
                DocumentState.PARTIAL,
                users=(conference.User("sip:user7@example.test", conference.ElementState.DELETED),),
            )
        )
    )
    started = time.perf_counter()
    for _ in range(rounds):
        conference.merge(state, partial)
    merge_ms = (time.perf_counter() - started) / rounds * 1e3
    screen = Screen(dummy(width=128, height=64, mode="1"))
    started = time.perf_counter()
    for offset in range(rounds):
        screen.panel = view.panel("Team", state, offset % people, lambda uri, name: name or uri)
        screen.render()
    draw_ms = (time.perf_counter() - started) / rounds * 1e3
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    current = state
    for version in range(2, 1002):
        update = conference.parse(
            conference.build(
                conference.ConferenceInfo(
                    entity, version, DocumentState.PARTIAL, users=(users[version % people],)
                )
            )
        )
        current = conference.merge(current, update)
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    print(f"\n3. A roster of {people} participants ({len(full) / 1024:.0f} KiB of XML)")
    print("| step | time |")
    print("|---|---|")
    print(f"| parse | {parse_ms:.2f} ms |")
    print(f"| merge one partial update | {merge_ms:.3f} ms |")
    print(f"| panel + draw | {draw_ms:.3f} ms |")
    print(f"| RSS growth over 1000 partial updates | {growth:.1f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--joins", type=int, default=100)
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp, Kamailio(extra_users=focus_users(ROOMS)) as server:
        workdir = Path(tmp)
        focus = Focus(server, ROOMS).start()
        alice = start_phone(server, workdir, "alice")
        bob = start_phone(server, workdir, "bob", enabled=False)
        try:
            tail = LogTail(workdir / "alice.log")
            latencies = joins(alice, tail, args.joins)
            print(f"\n1. Join → roster on alice's screen, {args.joins} joins (ms)")
            print("| p50 | p99 | max |\n|---|---|---|")
            print(f"| {pct(latencies, 50):.1f} | {pct(latencies, 99):.1f} | {max(latencies):.1f} |")
            ours = partials(alice, tail, focus, args.changes // 2)
            print(f"\n2. Partial NOTIFY → alice's screen, {len(ours)} NOTIFYs (ms, our share)")
            print("| p50 | p99 | max |\n|---|---|---|")
            print(f"| {pct(ours, 50):.2f} | {pct(ours, 99):.2f} | {max(ours):.2f} |")
            bob.press("contact-1")
            bob.wait_for(lambda s: [c["state"] for c in s["calls"]] == ["confirmed"])
            figures = {}
            for name, phone in (("alice, in a room", alice), ("bob, plugin off, same call", bob)):
                assert phone.process is not None
                figures[name] = proc_figures(phone.process.pid)
            time.sleep(args.idle)
            print(f"\n4. At rest for {args.idle:.0f} s")
            print("| phone | CPU | RSS |\n|---|---|---|")
            for name, phone in (("alice, in a room", alice), ("bob, plugin off, same call", bob)):
                assert phone.process is not None
                cpu, rss = proc_figures(phone.process.pid)
                share = (cpu - figures[name][0]) / args.idle * 100
                print(f"| {name} | {share:.2f} % of a core | {rss:.1f} MiB |")
        finally:
            for phone in (alice, bob):
                phone.stop()
            focus.stop()
    big_roster(args.people)


if __name__ == "__main__":
    main()
