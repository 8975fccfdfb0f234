"""Finding the XCAP root of a domain: TXT `xcap.<domain>` as Blink asks, then the
usual `https://xcap.<domain>/xcap-root`, each checked by its xcap-caps.

DNS is a scripted UDP server on loopback; XCAP is the Kamailio peer.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from phone.xcap.discovery import DnsError, candidates, discover_root, lookup_txt, nameserver
from tests.peers.kamailio import Kamailio


class ScriptedDns(asyncio.DatagramProtocol):
    """Answers every TXT query with `records` (the answer name compressed), or
    with `rcode`, or not at all."""

    def __init__(self, records: list[list[bytes]], rcode: int = 0, silent: bool = False) -> None:
        self.records, self.rcode, self.silent = records, rcode, silent
        self.transport: asyncio.DatagramTransport | None = None
        self.questions: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.questions.append(data[12:-4])
        if self.silent:
            return
        ident = data[:2]
        header = ident + struct.pack("!HHHHH", 0x8180 | self.rcode, 1, len(self.records), 0, 0)
        answers = b"".join(
            b"\xc0\x0c"
            + struct.pack("!HHIH", 16, 1, 60, sum(1 + len(s) for s in strings))
            + b"".join(bytes([len(s)]) + s for s in strings)
            for strings in self.records
        )
        assert self.transport is not None
        self.transport.sendto(header + data[12:] + answers, addr)


def ask(protocol: ScriptedDns, name: str, timeout: float = 2.0) -> list[str]:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        try:
            return await lookup_txt(name, server="127.0.0.1", port=port, timeout=timeout)
        finally:
            transport.close()

    return asyncio.run(main())


def test_txt_records_are_read() -> None:
    dns = ScriptedDns([[b"https://xcap.example.test/xcap-root"], [b"v=spf1 ", b"-all"]])
    assert ask(dns, "xcap.example.test") == ["https://xcap.example.test/xcap-root", "v=spf1 -all"]
    assert dns.questions == [b"\x04xcap\x07example\x04test\x00"]


def test_nxdomain_is_no_records_and_failures_are_dns_errors() -> None:
    assert ask(ScriptedDns([], rcode=3), "xcap.nowhere.test") == []
    with pytest.raises(DnsError, match="error code 2"):
        ask(ScriptedDns([], rcode=2), "xcap.example.test")
    with pytest.raises(DnsError, match="within 0.2 s"):
        ask(ScriptedDns([], silent=True), "xcap.example.test", timeout=0.2)
    with pytest.raises(DnsError, match="not a domain"):
        ask(ScriptedDns([]), "a..b")


def test_candidates() -> None:
    records = ["v=spf1 -all", " http://10.0.0.1/xcap ", "ftp://x/", "http://10.0.0.1/xcap"]
    assert candidates("example.test", records) == [
        "http://10.0.0.1/xcap",
        "https://xcap.example.test/xcap-root",
    ]
    assert candidates("example.test", []) == ["https://xcap.example.test/xcap-root"]


def test_nameserver_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch lan\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n")
    assert nameserver(conf) == "192.0.2.53"
    assert nameserver(tmp_path / "missing") == "127.0.0.1"


@pytest.mark.kamailio
def test_the_first_root_that_answers_is_taken(make_kamailio: Callable[..., Kamailio]) -> None:
    server = make_kamailio()
    dead = "http://127.0.0.1:9/xcap-root"

    async def records(name: str) -> list[str]:
        assert name == "xcap.example.test"
        return [dead, server.xcap_root]

    found = asyncio.run(
        discover_root(
            "example.test",
            server.uri("alice"),
            username="alice",
            password="alicepw",
            txt_lookup=records,
        )
    )
    assert found == server.xcap_root
