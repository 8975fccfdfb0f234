"""Benchmarks of the presence plugin (plugins/presence/) against Kamailio.

1. PUBLISH → LED: this process publishes bob's presence (RFC 3903, our
   `Publication`) alternating available and away; alice, a whole phone in a
   child process watching bob, logs each NOTIFY's arrival and the LED change
   (both `time.perf_counter_ns`, CLOCK_MONOTONIC, so comparable across the two
   processes). Split: the server's share (PUBLISH sent → NOTIFY received by
   alice, Kamailio plus two loopback hops) and ours (NOTIFY received → LED set:
   SIP parse, PIDF parse, the state rule, the LED layer).
2. RLS of 100 contacts: 100 users publish, alice starts with 100 contacts on
   8 buttons (13 pages) and `rls_uri`; the time from "registered" to every
   contact's LED showing its presence (both from alice's log), alice's CPU
   time to that point, and her RSS then.

Run: python bench/presence.py [--changes 300] [--contacts 100]
Targets (issue 5): our share of PUBLISH → LED p99 < 20 ms; the first full
state of 100 contacts < 1 s after registration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import pjsua2 as pj  # noqa: E402

from phone.payloads import pidf  # noqa: E402
from phone.payloads.rpid import Activity  # noqa: E402
from phone.remote import RemotePhone  # noqa: E402
from phone.sip.digest import Credentials  # noqa: E402
from phone.sip.identity import Identity  # noqa: E402
from phone.sip.layout import self_test  # noqa: E402
from phone.sip.publication import Publication  # noqa: E402
from phone.sip.rawsip import RawSip  # noqa: E402
from tests.peers import kamailio as kamailio_peer  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.phones import render_config  # noqa: E402

SHOWN = re.compile(
    r"^(\S+ \S+) DEBUG +plugins\.presence\.plugin: presence: (\S+) (\w+), LED \w+ \w+; "
    r"NOTIFY at (\d+) ns, LED ([\d.]+) ms later"
)
REGISTERED = re.compile(r"^(\S+ \S+) INFO +phone\.sip\.account: registered as")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def log_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


class Publisher:
    """pjsua in poll mode with one UDP transport and the request hook, publishing as anyone."""

    def __init__(self) -> None:
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.logConfig.level = 1
        config.logConfig.consoleLevel = 1
        self.ep.libInit(config)
        transport = pj.TransportConfig()
        transport.boundAddress = "127.0.0.1"
        transport_id = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.port = int(self.ep.transportGetInfo(transport_id).localName.rpartition(":")[2])
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        self.raw = RawSip(self.ep)
        self_test(self.raw)
        self.loop = asyncio.new_event_loop()

    def publication(self, server: Kamailio, user: str) -> Publication:
        contact = f"<sip:{user}@127.0.0.1:{self.port}>"
        identity = Identity(
            aor=server.uri(user),
            contact=lambda target: contact,
            credentials=Credentials(user, server.users[user]),
            route=(f"<sip:127.0.0.1:{server.sip_port};lr>",),
        )
        return Publication(self.raw, identity, self.loop, "presence", pidf.CONTENT_TYPE)

    def pump_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            self.ep.libHandleEvents(0)
            self.loop.run_until_complete(asyncio.sleep(0.0005))

    def close(self) -> None:
        self.loop.close()
        self.raw.close()
        self.ep.libDestroy()


class LogTail:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines: list[str] = []

    def poll(self) -> None:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        self.lines += data[:cut].decode(errors="replace").splitlines()


def allow(server: Kamailio, users: list[str]) -> None:
    with httpx.Client(timeout=10.0) as http:
        for user in users:
            response = http.put(
                server.xcap_url(user, "pres-rules"),
                content=server.xcap_example("allow-local-pres-rules"),
                auth=httpx.DigestAuth(user, server.users[user]),
            )
            response.raise_for_status()


def account(server: Kamailio, user: str, transport: str = "udp") -> dict[str, str]:
    return {
        "uri": server.uri(user),
        "password": server.users[user],
        "registrar": server.registrar_uri,
        "transport": transport,
    }


def cpu_and_rss(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return cpu, int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def bench_publish_to_led(publisher: Publisher, workdir: Path, changes: int) -> None:
    with Kamailio() as server:
        allow(server, ["bob"])
        config = render_config(
            account(server, "alice"), [("Bob", server.uri("bob"))], workdir, "alice"
        )
        alice = RemotePhone("alice", config, workdir, log_level="DEBUG").start()
        try:
            alice.wait_for(lambda s: s["registered"], what="alice registered")
            tail = LogTail(alice.log_path)
            bob = publisher.publication(server, "bob")
            server_ms: list[float] = []
            ours_ms: list[float] = []
            total_ms: list[float] = []
            for i in range(changes + 1):
                away = i % 2 == 1
                expected = "away" if away else "available"
                body = pidf.build_user_presence(
                    server.uri("bob"),
                    pidf.BasicStatus.OPEN,
                    activities=(Activity.AWAY,) if away else (),
                    note=f"change {i}",
                )
                seen = len(tail.lines)
                sent_ns = time.perf_counter_ns()
                bob.publish(body)
                match: re.Match[str] | None = None

                def shown(seen: int = seen, expected: str = expected) -> bool:
                    nonlocal match
                    tail.poll()
                    for line in tail.lines[seen:]:
                        m = SHOWN.match(line)
                        if m and m.group(2) == server.uri("bob") and m.group(3) == expected:
                            match = m
                            return True
                    return False

                publisher.pump_until(shown, 10.0, f"change {i} on alice's LED")
                assert match is not None
                if i == 0:
                    continue  # the first one pays for the digest challenge
                server_part = (int(match.group(4)) - sent_ns) / 1e6
                ours = float(match.group(5))
                server_ms.append(server_part)
                ours_ms.append(ours)
                total_ms.append(server_part + ours)
            print(f"\n1. PUBLISH → alice's LED, {changes} changes (ms)")
            print("| part | p50 | p99 | max |")
            print("|---|---|---|---|")
            for name, values in (
                ("server: PUBLISH sent → NOTIFY received", server_ms),
                ("ours: NOTIFY received → LED set", ours_ms),
                ("total", total_ms),
            ):
                print(
                    f"| {name} | {pct(values, 50):.2f} | {pct(values, 99):.2f} "
                    f"| {max(values):.2f} |"
                )
        finally:
            alice.stop()


def bench_rls(publisher: Publisher, workdir: Path, contacts: int, body_limit: int) -> None:
    users = {f"u{i:03d}": f"pw{i:03d}" for i in range(contacts)}
    template = workdir / "kamailio.cfg.in"
    anchor = 'modparam("rls", "max_expires", 7200)\n'
    text = kamailio_peer.CONFIG_TEMPLATE.read_text()
    assert anchor in text, "the Kamailio peer config changed: update bench/presence.py"
    template.write_text(
        text.replace(anchor, anchor + f'modparam("rls", "max_notify_body_length", {body_limit})\n')
    )
    kamailio_peer.CONFIG_TEMPLATE = template
    with Kamailio(extra_users=users) as server:
        allow(server, list(users))
        entries = "".join(f'<entry uri="{server.uri(u)}"/>' for u in users)
        lists = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
            f'<list name="friends">{entries}</list></resource-lists>'
        ).encode()
        with httpx.Client(timeout=10.0) as http:
            auth = httpx.DigestAuth("alice", server.users["alice"])
            for auid, document in (
                ("resource-lists", lists),
                ("rls-services", server.xcap_example("alice-rls-services")),
            ):
                http.put(
                    server.xcap_url("alice", auid), content=document, auth=auth
                ).raise_for_status()
        publications = [publisher.publication(server, u) for u in users]
        for user, publication in zip(users, publications, strict=True):
            publication.publish(pidf.build_user_presence(server.uri(user), pidf.BasicStatus.OPEN))
        publisher.pump_until(
            lambda: all(p.etag is not None and p.settled for p in publications),
            30.0,
            "every contact published",
        )
        config = render_config(
            account(server, "alice", "tcp"),
            [(u, server.uri(u)) for u in users],
            workdir,
            "alice-rls",
            buttons=8,
            plugins={"presence": {"rls_uri": "sip:alice-buddies@example.test"}},
        )
        alice = RemotePhone("alice-rls", config, workdir, log_level="DEBUG").start()
        try:
            assert alice.process is not None
            tail = LogTail(alice.log_path)
            shown_at: dict[str, float] = {}
            registered_at: list[float] = []

            read = 0

            def all_shown() -> bool:
                nonlocal read
                tail.poll()
                fresh, read = tail.lines[read:], len(tail.lines)
                for line in fresh:
                    if not registered_at and (m := REGISTERED.match(line)):
                        registered_at.append(log_time(m.group(1)))
                    m2 = SHOWN.match(line)
                    if m2 and m2.group(3) == "available":
                        shown_at.setdefault(m2.group(2), log_time(m2.group(1)))
                return bool(registered_at) and len(shown_at) == contacts

            try:
                publisher.pump_until(all_shown, 30.0, "all contacts shown")
            except TimeoutError:
                print(f"{len(shown_at)} of {contacts} shown; alice's log:")
                print("\n".join(tail.lines[-40:]))
                raise
            cpu, rss = cpu_and_rss(alice.process.pid)
            last = max(shown_at.values())
            first = min(shown_at.values())
            print(f"\n2. RLS list of {contacts} contacts on 8 buttons")
            print("| figure | value |")
            print("|---|---|")
            print(
                f"| registered → first contact shown | {(first - registered_at[0]) * 1000:.0f} ms |"
            )
            print(
                f"| registered → all {contacts} shown | {(last - registered_at[0]) * 1000:.0f} ms |"
            )
            print(f"| alice's CPU time, start → all shown | {cpu:.2f} s |")
            print(f"| alice's RSS then | {rss:.1f} MiB |")
            full = [line for line in tail.lines if "full state" in line]
            if full:
                print(f"| first full-state NOTIFY | {full[0].split('presence: ', 1)[1]} |")
        finally:
            alice.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--contacts", type=int, default=100)
    parser.add_argument("--body-limit", type=int, default=3000)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    publisher = Publisher()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-presence-") as workdir:
            bench_publish_to_led(publisher, Path(workdir), args.changes)
        with tempfile.TemporaryDirectory(prefix="bench-presence-") as workdir:
            bench_rls(publisher, Path(workdir), args.contacts, args.body_limit)
    finally:
        publisher.close()


if __name__ == "__main__":
    main()
