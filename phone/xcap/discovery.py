"""Finding the XCAP root of a SIP domain when the settings name none, as Blink does.

python3-sipsimple (Blink) asks DNS for the TXT records of `xcap.<domain>` and
uses those that are http(s) URIs. Where there are none, a provider that
follows the usual layout serves `https://xcap.<domain>/xcap-root`. A
candidate is only taken when its `xcap-caps` document (RFC 4825 §12) answers,
so a wrong guess costs one request and never a misconfigured phone.

The TXT query is one UDP datagram (RFC 1035 §4) to the first nameserver of
/etc/resolv.conf: a DNS library would cost more memory than the rest of
XCAP, for one record type.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from phone.xcap.client import XcapClient
from phone.xcap.errors import XcapError

log = logging.getLogger(__name__)

RESOLV_CONF = Path("/etc/resolv.conf")
DNS_TIMEOUT_S = 3.0
TXT = 16
IN = 1

TxtLookup = Callable[[str], Awaitable[list[str]]]


class DnsError(Exception):
    """No usable DNS answer (time-out, error code, malformed message)."""


def nameserver(resolv_conf: Path = RESOLV_CONF) -> str:
    """The first `nameserver` of resolv.conf (127.0.0.1 when there is none, as libc does)."""
    try:
        lines = resolv_conf.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            return fields[1]
    return "127.0.0.1"


def _query(name: str, ident: int) -> bytes:
    labels = [label.encode("idna") for label in name.rstrip(".").split(".")]
    if any(not 0 < len(label) < 64 for label in labels):
        raise DnsError(f"not a domain name: {name!r}")
    question = b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
    return (
        struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", TXT, IN)
    )


def _skip_name(message: bytes, offset: int) -> int:
    """The offset after the (possibly compressed) name at `offset`."""
    while True:
        if offset >= len(message):
            raise DnsError("truncated name")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def parse_txt_answer(message: bytes, ident: int) -> list[str]:
    """The TXT strings of a DNS answer (each record's strings joined, RFC 7208 style)."""
    if len(message) < 12:
        raise DnsError("answer shorter than a DNS header")
    got_ident, flags, questions, answers, _, _ = struct.unpack("!HHHHHH", message[:12])
    if got_ident != ident or not flags & 0x8000:
        raise DnsError("not the answer to our query")
    if flags & 0x000F not in (0, 3):  # NOERROR, NXDOMAIN
        raise DnsError(f"DNS error code {flags & 0x000F}")
    offset = 12
    for _ in range(questions):
        offset = _skip_name(message, offset) + 4
    records = []
    for _ in range(answers):
        offset = _skip_name(message, offset)
        if offset + 10 > len(message):
            raise DnsError("truncated record")
        kind, _, _, length = struct.unpack("!HHIH", message[offset : offset + 10])
        offset += 10
        data = message[offset : offset + length]
        if len(data) != length:
            raise DnsError("truncated record data")
        offset += length
        if kind != TXT:
            continue
        strings, position = [], 0
        while position < len(data):
            size = data[position]
            strings.append(data[position + 1 : position + 1 + size])
            position += 1 + size
        records.append(b"".join(strings).decode("utf-8", errors="replace"))
    return records


class _Answer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.received.done():
            self.received.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.received.done():
            self.received.set_exception(exc)


async def lookup_txt(
    name: str, *, server: str | None = None, port: int = 53, timeout: float = DNS_TIMEOUT_S
) -> list[str]:
    """The TXT records of `name`, asked of `server` (default: resolv.conf's)."""
    ident = secrets.randbelow(0x10000)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Answer, remote_addr=(server or nameserver(), port)
    )
    try:
        transport.sendto(_query(name, ident))
        async with asyncio.timeout(timeout):
            return parse_txt_answer(await protocol.received, ident)
    except TimeoutError:
        raise DnsError(f"no DNS answer for {name} within {timeout:g} s") from None
    except OSError as exc:
        raise DnsError(f"DNS query for {name} failed: {exc}") from None
    finally:
        transport.close()


def candidates(domain: str, txt_records: list[str]) -> list[str]:
    """The XCAP roots to try for `domain`: http(s) URIs from TXT, then the usual one."""
    found = [
        record.strip()
        for record in txt_records
        if urlsplit(record.strip()).scheme in ("http", "https") and urlsplit(record.strip()).netloc
    ]
    usual = f"https://xcap.{domain}/xcap-root"
    return [*dict.fromkeys(found), *([usual] if usual not in found else [])]


async def discover_root(
    domain: str,
    xui: str,
    *,
    username: str | None = None,
    password: str | None = None,
    txt_lookup: TxtLookup | None = None,
    timeout: float = 5.0,
) -> str | None:
    """The first candidate root of `domain` whose xcap-caps answers, or None."""
    lookup = txt_lookup or lookup_txt
    try:
        records = await lookup(f"xcap.{domain}")
    except DnsError as exc:
        log.info("XCAP root of %s: no TXT records (%s)", domain, exc)
        records = []
    for root in candidates(domain, records):
        client = XcapClient(
            root, xui, username=username, password=password, timeout=timeout, retries=0
        )
        try:
            await client.capabilities()
        except XcapError:
            continue  # the client has logged why
        log.info("XCAP root of %s: %s", domain, root)
        return root
    log.warning("XCAP root of %s: none found (TXT xcap.%s, then xcap.%s)", domain, domain, domain)
    return None
