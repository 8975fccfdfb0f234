"""Parse-time benchmark of the SIMPLE payload parsers (`phone.payloads`).

Prints p50/p99 parse times per document type, on realistic samples from
tests/payloads/samples, and for an RLS NOTIFY body listing 100 resources
(multipart/related: RLMI + 100 PIDF parts), with the machine it ran on.

    python bench/payloads.py [--runs N]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, pct  # noqa: E402
from phone.payloads import (  # noqa: E402
    conference,
    cpim,
    dialoginfo,
    iscomposing,
    pidf,
    rlmi,
    watcherinfo,
    xcapdiff,
)
from phone.payloads.pidf import BasicStatus  # noqa: E402
from phone.payloads.rlmi import BodyPart, Instance, InstanceState, Resource, ResourceList  # noqa: E402
from phone.payloads.rpid import Activity  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "payloads" / "samples"


def read(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def rls_notify(resources: int) -> tuple[str, bytes]:
    """An RLS NOTIFY body as Kamailio's rls sends it: every resource active, one PIDF each."""
    entries = []
    parts = []
    for index in range(resources):
        uri = f"sip:user{index:03d}@example.test"
        cid = f"{index:08x}@rls.example.test"
        entries.append(
            Resource(uri, instances=(Instance(f"inst{index}", InstanceState.ACTIVE, cid=cid),))
        )
        body = pidf.build_user_presence(
            uri,
            BasicStatus.OPEN if index % 3 else BasicStatus.CLOSED,
            activities=(Activity.ON_THE_PHONE,) if index % 5 == 0 else (),
            note="Available" if index % 2 else "Do not disturb",
            contact=f"sip:user{index:03d}@192.0.2.{index % 250 + 1}:5060",
        )
        parts.append(BodyPart(cid, pidf.CONTENT_TYPE, body))
    return rlmi.build_notify(
        ResourceList("sip:friends@example.test", 0, True, resources=tuple(entries)),
        parts,
        boundary="bench-boundary-7d1f9",
    )


def measure(parse: Callable[[], object], runs: int) -> tuple[float, float]:
    """p50 and p99 in microseconds over `runs` calls, after a short warm-up."""
    for _ in range(min(runs, 50)):
        parse()
    timings = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        parse()
        timings.append((time.perf_counter_ns() - started) / 1000)
    return pct(timings, 50), pct(timings, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="parses per document type")
    runs = parser.parse_args().runs

    notify_type, notify_body = rls_notify(100)
    cases: list[tuple[str, Callable[[bytes], object], bytes, int]] = [
        ("PIDF+RPID (Blink)", pidf.parse, read("blink-pidf.xml"), runs),
        ("PIDF+RPID (RFC 4480)", pidf.parse, read("rfc4480-rpid.xml"), runs),
        ("RLMI list", rlmi.parse, read("rfc4662-rlmi.xml"), runs),
        ("watcherinfo", watcherinfo.parse, read("rfc3858-watcherinfo.xml"), runs),
        ("dialog-info", dialoginfo.parse, read("rfc4235-confirmed.xml"), runs),
        ("conference-info (SylkServer)", conference.parse, read("sylkserver-conference.xml"), runs),
        ("xcap-diff", xcapdiff.parse, read("rfc5874-xcapdiff.xml"), runs),
        ("is-composing", iscomposing.parse, read("rfc3994-active.xml"), runs),
        ("Message/CPIM", cpim.parse, read("rfc3862-message.cpim"), runs),
        (
            "RLS NOTIFY, 100 resources",
            lambda body: rlmi.parse_notify(notify_type, body),
            notify_body,
            max(20, runs // 20),
        ),
    ]

    print(f"machine: {machine()}")
    print(f"{'document':<30} {'bytes':>7} {'runs':>6} {'p50 us':>9} {'p99 us':>9}")
    for name, parse, data, count in cases:
        p50, p99 = measure(lambda parse=parse, data=data: parse(data), count)
        print(f"{name:<30} {len(data):>7} {count:>6} {p50:>9.1f} {p99:>9.1f}")


if __name__ == "__main__":
    main()
