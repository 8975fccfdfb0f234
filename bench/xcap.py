"""Benchmarks of the XCAP client (phone/xcap/) and documents against Kamailio.

1. A 500-entry resource-list (Blink-style display names) on Kamailio's
   xcap_server: from a new `XcapClient` to the list of (name, URI) contacts
   ready, i.e. GET (with its Digest 401 round trip) and parse; then the same
   with the client's nonce already known, the conditional refresh (304), and
   the parse alone.
2. The XCAP plugin in a whole phone (plugins/xcap/), from its log: a change
   of the 500-entry list found by refresh until the buttons are set (GET,
   parse, store, buttons); a watcher's winfo NOTIFY until the prompt is on
   the screen; `answer` until pres-rules are written (a GET and a PUT to
   Kamailio included); and the idle RSS and CPU of a phone with the plugin
   against one without it.
3. Memory: the RSS an idle client costs (import, a client, and the TLS
   context an https root needs): h11 and the HTTP libraries the client could
   have used instead (httpx; aiohttp when installed), and the whole of
   phone.xcap with its documents, each in a fresh interpreter that has
   already imported what the core has loaded anyway.

Run: python bench/xcap.py [--entries 500] [--runs 50] [--watchers 10] [--python PATH]
Targets (issue 10): 500 entries < 300 ms until the buttons are set; winfo
NOTIFY → prompt and answer → PUT p99 < 20 ms of our own time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phone.payloads import resourcelists  # noqa: E402
from phone.payloads.resourcelists import DisplayName, Entry, ResourceList, ResourceLists  # noqa: E402
from phone.remote import RemotePhone  # noqa: E402
from phone.xcap import applications  # noqa: E402
from phone.xcap.client import Document, XcapClient  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.phones import account, render_config  # noqa: E402

Contacts = list[tuple[str, str]]


def contact_list(entries: int, first: str | None = None) -> ResourceLists:
    """`entries` people; the first one named `first` when given (a changed list)."""
    people = tuple(
        Entry(
            f"sip:user{i:03d}@example.test",
            DisplayName(first if i == 0 and first else f"User Number {i:03d}"),
        )
        for i in range(entries)
    )
    return ResourceLists((ResourceList("buddies", items=people),))


def contacts_of(document: Document[ResourceLists]) -> Contacts:
    buddies = document.value.list("buddies")
    assert buddies is not None
    return [
        (entry.display_name.text if entry.display_name else entry.uri, entry.uri)
        for entry in buddies.entries()
    ]


def milliseconds(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms"


async def timed(runs: int, action: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - start)
    return samples


async def sync_figures(server: Kamailio, entries: int, runs: int) -> None:
    body = resourcelists.build(contact_list(entries))
    server.xcap_put("alice", "resource-lists", body)
    print(f"resource-lists document: {entries} entries, {len(body)} bytes")

    def new_client() -> XcapClient:
        return XcapClient(
            server.xcap_root, server.uri("alice"), username="alice", password="alicepw"
        )

    async def cold() -> Contacts:
        contacts = contacts_of(await new_client().fetch(applications.RESOURCE_LISTS))
        assert len(contacts) == entries
        return contacts

    warm_client = new_client()
    cached = await warm_client.fetch(applications.RESOURCE_LISTS)

    async def warm() -> Contacts:
        return contacts_of(await warm_client.fetch(applications.RESOURCE_LISTS))

    async def refresh() -> None:
        again = await warm_client.fetch(applications.RESOURCE_LISTS, cached=cached)
        assert again is cached

    async def parse_only() -> None:
        resourcelists.parse(cached.resource.body)

    print(
        f"new client → contacts ready (401 + GET + parse): {milliseconds(await timed(runs, cold))}"
    )
    print(
        f"known nonce → contacts ready (GET + parse):      {milliseconds(await timed(runs, warm))}"
    )
    print(
        f"conditional refresh, 304:                        {milliseconds(await timed(runs, refresh))}"
    )
    print(
        f"parse alone:                                     {milliseconds(await timed(runs, parse_only))}"
    )


def logged_ms(log: Path, pattern: str) -> list[float]:
    """The milliseconds the phone's log gave for each line matching `pattern`
    (a regex whose group 1 is the number), as seconds."""
    found = re.findall(pattern, log.read_text())
    return [float(ms) / 1000 for ms in found]


def process_figures(pid: int, seconds: float) -> tuple[float, float]:
    """RSS (MiB) and the CPU share (%) of process `pid` over `seconds`."""

    def cpu() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, clock ticks

    before = cpu()
    time.sleep(seconds)
    used = (cpu() - before) / os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss / 1024, 100 * used / seconds


def phone(
    server: Kamailio,
    workdir: Path,
    user: str,
    plugins: dict[str, dict[str, Any]],
    contacts: Sequence[tuple[str, str]] = (),
) -> RemotePhone:
    config = render_config(account(server, user), list(contacts), workdir, user, plugins=plugins)
    return RemotePhone(user, config, workdir, log_level="DEBUG").start()


def screen_has(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: any(text in line for line in s["screen"])


def watcher_active(uri: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: {"uri": uri, "status": "active"} in s["watchers"]


def plugin_figures(entries: int, runs: int, watchers: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-xcap-"))
    users = {f"w{i:03d}": "pw" for i in range(watchers)}
    with Kamailio(tcp_read_buffer=256 * 1024, extra_users=users) as server:
        server.xcap_put("alice", "resource-lists", resourcelists.build(contact_list(entries)))
        no_presence: dict[str, dict[str, Any]] = {"presence": {"enabled": False}}
        alice = phone(
            server,
            workdir,
            "alice",
            {"xcap": {"root": server.xcap_root, "refresh_s": 1}, **no_presence},
        )
        try:
            alice.wait_for(lambda s: s["contacts_source"]["state"] == "synced", timeout=20)
            for run in range(runs):
                changed = contact_list(entries, first=f"Changed {run}")
                server.xcap_put("alice", "resource-lists", resourcelists.build(changed))
                alice.wait_for(
                    lambda s, run=run: s["buttons"]["contact-1"]["label"] == f"Changed {run}",
                    timeout=10,
                )
            sync = logged_ms(alice.log_path, rf"{entries} contacts from list .* in ([\d.]+) ms")
            print(
                f"refresh → {entries} contacts on the buttons (GET, parse, store, buttons), "
                f"{len(sync)} changes: {milliseconds(sync)}"
            )
            for user in users:
                watcher = phone(server, workdir, user, {}, [("Alice", server.uri("alice"))])
                try:
                    watcher.wait_for(lambda s: s["registered"], timeout=10)
                    alice.wait_for(screen_has(f"{user} wants to"), timeout=10)
                    alice.press("answer")
                    alice.wait_for(watcher_active(server.uri(user)), timeout=10)
                finally:
                    watcher.stop()
            time.sleep(0.5)
            prompt = logged_ms(alice.log_path, r"prompt for \S+ ([\d.]+) ms after the NOTIFY")
            written = logged_ms(alice.log_path, r"written \(([\d.]+) ms after the press\)")
            print(
                f"winfo NOTIFY → prompt on the screen, {len(prompt)} watchers: {milliseconds(prompt)}"
            )
            print(
                f"answer → pres-rules written (GET + PUT to Kamailio), {len(written)}: {milliseconds(written)}"
            )
        finally:
            alice.stop()
        idle: dict[str, dict[str, dict[str, Any]]] = {
            "with the xcap plugin": {"xcap": {"root": server.xcap_root}, **no_presence},
            "without it": {"xcap": {"enabled": False}, **no_presence},
        }
        for name, plugins in idle.items():
            bob = phone(server, workdir, "bob", plugins)
            try:
                bob.wait_for(lambda s: s["registered"], timeout=10)
                time.sleep(3)
                assert bob.process is not None
                rss, cpu = process_figures(bob.process.pid, 30)
                print(f"idle phone {name}: RSS {rss:.1f} MiB, CPU {cpu:.2f} % over 30 s")
            finally:
                bob.stop()


RSS_PROBE = """
import asyncio, gc, ssl, sys
from lxml import etree
import phone.payloads.pidf, phone.sip.digest  # the core has these loaded anyway
def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) / 1024
async def main():
    base = rss()
    {setup}
    imported = rss()
    context = ssl.create_default_context()
    gc.collect()
    print(f"{{imported - base:.1f}} {{rss() - base:.1f}}")
    {teardown}
asyncio.run(main())
"""

CANDIDATES = {
    "h11": ("import h11; client = None", ""),
    "phone.xcap (all)": (
        "from phone.xcap.client import XcapClient; "
        "client = XcapClient('https://x/xcap-root', 'sip:a@x')",
        "",
    ),
    "httpx": (
        "import httpx; client = httpx.AsyncClient(verify=ssl.create_default_context())",
        "await client.aclose()",
    ),
    "aiohttp": ("import aiohttp; client = aiohttp.ClientSession()", "await client.close()"),
}


def rss_figures(python: str) -> None:
    print(
        "RSS cost over a process with asyncio, ssl, lxml, phone.payloads and phone.sip.digest"
        " loaded (import / with a client and a TLS context):"
    )
    root = str(Path(__file__).resolve().parent.parent)
    for name, (setup, teardown) in CANDIDATES.items():
        code = RSS_PROBE.format(setup=setup, teardown=teardown)
        result = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": root},
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["?"])[-1]
            print(f"  {name:18s} not measured: {last}")
            continue
        imported, total = result.stdout.split()
        print(f"  {name:18s} +{imported} MiB import, +{total} MiB with a client")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=500)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for the RSS figures (one with aiohttp installed measures it too)",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, CPython {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    # Packaged Kamailio reads TCP messages up to 16 kB: the list's PUT needs more.
    with Kamailio(tcp_read_buffer=256 * 1024) as server:
        asyncio.run(sync_figures(server, args.entries, args.runs))
    plugin_figures(args.entries, min(args.runs, 20), args.watchers)
    rss_figures(args.python)


if __name__ == "__main__":
    main()
