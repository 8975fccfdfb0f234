"""The memory-layout self-test: what we read of pjsip's private memory is checked first.

Two offsets depend on the build (`PJSIP_MAX_PKT_LEN`, `PJ_MAX_OBJ_NAME`, the
ioqueue) and are *derived* at start-up by `self_test(raw)`:

* `pjsip_rx_data.msg_info.msg_buf`: tagged OPTIONS are sent to our own
  transports (two of different lengths over UDP, and two over TCP, for each
  of them that exists). In the hook the rdata is read with `pread` on
  `/proc/self/mem` (an unmapped page ends the read instead of crashing); the
  first pointer to the received text that lies after the text is `msg_buf`;
  the int after it must be the length, and `pjsip_msg_print` of the pointer
  at +16 (`msg_info.msg`) must reproduce the request. Every run must agree,
  on that and on where the text starts (`pkt_info.packet`): the distance
  between the two gives the size of the receive buffer (4000 bytes in the
  x86_64 wheel, 16000 in the SD image's build), which is logged.
* `pjsip_tx_data.msg`: a request is built with a unique Call-ID, the tx data is
  scanned for a pointer to a `pjsip_msg` of type request whose method name
  reads back, whose header list is a closed ring, and which `pjsip_msg_print`s
  with that Call-ID; a header added through that pointer must print too, and
  so must a body stored in `pjsip_msg.body` (+104, NULL before). The pool at
  +16 must carry pjsip's `tdta` name.

Last, a round trip: an OPTIONS with a header and a body is sent to our own
transport through `RawSip.send`; the hook must read it as built, and pjsua's
200 must come back through the transaction event. If any check fails,
`self_test` raises `LayoutError` and the phone refuses to start. Until it has
passed, the hook claims nothing.

Chat-only sessions wrap pjsua's entries in pjsip's private table of invite
callbacks (`static struct mod_inv { pjsip_module mod; pjsip_endpoint *endpt;
pjsip_inv_callback cb; }` in sip_inv.c, found through
`pjsip_inv_usage_instance()`). `invite_callback_table()` checks it before
anyone touches it: `endpt` equals `pjsua_get_pjsip_endpt()`; every non-NULL
entry points into the pjsua2 library's code; and the set entries are exactly
the ones pjsua 2.15.1 sets (`on_rx_reinvite` optional).
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import struct
import time
from ctypes import c_void_p as VoidP
from dataclasses import dataclass, field

from phone import pjproject
from phone.pjproject import LayoutError, PjsipModule
from phone.sip.message import SipMessage
from phone.sip.rawsip import OutgoingRequest, RawSip, Responder

log = logging.getLogger(__name__)

_RDATA_SCAN = 65536
_TDATA_SCAN = 2048

# The entries pjsua 2.15.1 sets in mod_inv.cb (pjsua_call.c, pjsua_call_subsys_init).
PJSUA_SETS = frozenset(
    {
        "on_state_changed",
        "on_new_session",
        "on_tsx_state_changed",
        "on_rx_offer2",
        "on_create_offer",
        "on_media_update",
        "on_redirected",
    }
)
PJSUA_MAY_SET = frozenset({"on_rx_reinvite"})


@dataclass(frozen=True)
class LayoutReport:
    """What the self-test derived, for the start-up log."""

    rx_msg_buf_offset: int
    tx_msg_offset: int
    rx_packet_room: int  # PJSIP_MAX_PKT_LEN, to within 7 bytes below
    probes: tuple[str, ...] = field(default=())


def self_test(raw: RawSip, timeout: float = 3.0) -> LayoutReport:
    """Derive and check the build-dependent offsets, and give them to `raw`;
    raise LayoutError on any doubt."""
    return _SelfTest(raw).run(timeout)


class _SelfTest:
    def __init__(self, raw: RawSip) -> None:
        self._raw = raw
        self._memory = raw.memory
        self._lib = pjproject.library()

    def run(self, timeout: float) -> LayoutReport:
        raw = self._raw
        transports = self._transports()
        # Two probes of different lengths per kind (UDP, TCP) that we listen on.
        plan = []
        for kind in ("UDP", "TCP"):
            address = next((a for k, a in transports if k == kind), None)
            if address is not None:
                plan += [(kind, address, 0), (kind, address, 300)]
        if not plan:
            raise LayoutError("self-test needs a UDP or TCP transport")
        offsets: set[tuple[int, int]] = set()
        probes: list[str] = []
        for proto, address, pad in plan:
            packet, offset = self._probe_rx(proto, address, pad, timeout)
            offsets.add((packet, offset))
            probes.append(f"{proto}+{pad}:{packet}/{offset}")
        if len(offsets) != 1:
            raise LayoutError(f"pkt_info.packet/msg_info.msg_buf offsets disagree: {probes}")
        raw.offsets.rx_packet, raw.offsets.rx_msg_buf = offsets.pop()
        room = raw.offsets.rx_packet_room
        if room is None or room <= 0:
            raise LayoutError(f"pkt_info.packet at {raw.offsets.rx_packet} leaves no room")
        try:
            raw.offsets.tx_msg = self._probe_tx(plan[0][1])
            self._probe_round_trip(plan[0][0], plan[0][1], timeout)
        except LayoutError:
            raw.offsets.rx_msg_buf = raw.offsets.tx_msg = raw.offsets.rx_packet = None
            raise
        report = LayoutReport(raw.offsets.rx_msg_buf, raw.offsets.tx_msg, room, tuple(probes))
        log.info(
            "pjsip layout self-test passed: rdata.msg_info at %d, tdata.msg at %d, "
            "receive buffer %d bytes (%s)",
            report.rx_msg_buf_offset,
            report.tx_msg_offset,
            report.rx_packet_room,
            ", ".join(probes),
        )
        return report

    def _transports(self) -> list[tuple[str, tuple[str, int]]]:
        found = []
        ep = self._raw.ep
        for transport_id in ep.transportEnum():
            info = ep.transportGetInfo(transport_id)
            host, _, port = info.localName.rpartition(":")
            found.append((info.typeName.upper(), (host.strip("[]"), int(port))))
        return found

    def _probe_rx(
        self, proto: str, address: tuple[str, int], pad: int, timeout: float
    ) -> tuple[int, int]:
        """(pkt_info.packet, msg_info.msg_buf) offsets, as one probe request reads them."""
        tag = "selftest-" + os.urandom(16).hex()
        text = (
            f"OPTIONS sip:selftest@{address[0]}:{address[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/{proto} 127.0.0.1:9;branch=z9hG4bK{tag}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:selftest@127.0.0.1>;tag={tag}\r\n"
            "To: <sip:selftest@127.0.0.1>\r\n"
            f"Call-ID: {tag}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            f"Subject: {'x' * pad}\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        results: list[tuple[int, int] | LayoutError] = []
        sent_from = 0

        def probe(rdata: int) -> bool:
            if results:
                return False
            seen = self._memory.read(rdata, _RDATA_SCAN)
            if tag.encode() not in seen:
                return False
            try:
                packet, offset = self._locate_msg_info(seen, rdata, text, tag.encode())
                host, port = self._raw.source_at(rdata, offset)
                if port != sent_from:
                    raise LayoutError(f"pkt_info reads {host}:{port}, sent from {sent_from}")
                results.append((packet, offset))
            except LayoutError as exc:
                results.append(exc)
            self._raw.respond(rdata, 200, ())
            return True

        self._raw.probe = probe
        try:
            kind = socket.SOCK_DGRAM if proto == "UDP" else socket.SOCK_STREAM
            with socket.socket(socket.AF_INET, kind) as sock:
                if proto == "UDP":
                    sock.sendto(text, address)
                else:
                    sock.settimeout(timeout)
                    sock.connect(address)
                    sock.sendall(text)
                sent_from = sock.getsockname()[1]  # what source_address must read
                deadline = time.monotonic() + timeout
                while not results and time.monotonic() < deadline:
                    self._raw.ep.libHandleEvents(10)
        finally:
            self._raw.probe = None
        if not results:
            raise LayoutError(f"self-test over {proto}: the hook never saw the probe request")
        result = results[0]
        if isinstance(result, LayoutError):
            raise result
        return result

    def _locate_msg_info(self, seen: bytes, rdata: int, sent: bytes, tag: bytes) -> tuple[int, int]:
        index = seen.find(sent)
        if index < 0:
            raise LayoutError("probe text not found in rdata")
        needle = struct.pack("<Q", rdata + index)
        start = (index + len(sent) + 7) & ~7
        hit = next((i for i in range(start, len(seen) - 24, 8) if seen[i : i + 8] == needle), None)
        if hit is None:
            raise LayoutError("no msg_info.msg_buf pointer after the packet text")
        length = struct.unpack_from("<i", seen, hit + 8)[0]
        msg = struct.unpack_from("<Q", seen, hit + 16)[0]
        if length != len(sent):
            raise LayoutError(f"msg_info.len is {length}, sent {len(sent)}")
        printed = self._print(msg)
        if tag not in printed or not printed.startswith(sent.split(b"\r\n", 1)[0]):
            raise LayoutError("pjsip_msg_print(msg_info.msg) does not reproduce the probe")
        return index, hit

    def _print(self, msg: int) -> bytes:
        if not msg or len(self._memory.read(msg, 64)) < 64:
            return b""
        buffer = ctypes.create_string_buffer(65536)
        size = self._lib.pjsip_msg_print(msg, buffer, len(buffer))
        return buffer.raw[:size] if size > 0 else b""

    def _probe_tx(self, address: tuple[str, int]) -> int:
        call_id = "selftest-" + os.urandom(16).hex()
        uri = f"sip:selftest@{address[0]}:{address[1]}"
        request = OutgoingRequest(
            "OPTIONS", uri, f"<{uri}>;tag=a{call_id}", f"<{uri}>", call_id, 1, f"<{uri}>"
        )
        raw = self._raw
        tdata = raw.create(request)
        try:
            name = self._memory.read(tdata + pjproject.TDATA_NAME_OFFSET, 4)
            pool = self._memory.pointer(tdata + pjproject.TDATA_POOL_OFFSET)
            if (
                name != b"tdta"
                or self._memory.read(pool + pjproject.POOL_NAME_OFFSET, 4) != b"tdta"
            ):
                raise LayoutError("pjsip_tx_data does not start with list, pool, obj_name")
            seen = self._memory.read(tdata, _TDATA_SCAN)
            for offset in range(32, len(seen) - 8, 8):
                msg = struct.unpack_from("<Q", seen, offset)[0]
                if self._looks_like_request(msg, b"OPTIONS") and call_id.encode() in self._print(
                    msg
                ):
                    break
            else:
                raise LayoutError("pjsip_tx_data.msg not found")
            raw.offsets.tx_msg = offset
            raw.add_headers(tdata, (("Subject", call_id[::-1]),))
            if call_id[::-1].encode() not in self._print(msg):
                raise LayoutError("a header added to pjsip_tx_data.msg does not print")
            if self._memory.pointer(msg + pjproject.MSG_BODY_OFFSET) != 0:
                raise LayoutError("pjsip_msg.body of a request without body is not NULL")
            raw.set_body(tdata, "application/x-selftest", call_id.encode())
            printed = self._print(msg)
            if b"Content-Type: application/x-selftest" not in printed or not printed.endswith(
                call_id.encode()
            ):
                raise LayoutError("a body set on pjsip_tx_data.msg does not print")
            return offset
        finally:
            raw.offsets.tx_msg = None
            self._lib.pjsip_tx_data_dec_ref(tdata)

    def _probe_round_trip(self, proto: str, address: tuple[str, int], timeout: float) -> None:
        """Send ourselves an OPTIONS with a header and a body through `send`: the hook
        must see both as sent, and pjsua's 200 must come back through the
        transaction's `pjsip_event` (src at 24, src type at 44)."""
        tag = "selftest-" + os.urandom(16).hex()
        uri = f"sip:selftest@{address[0]}:{address[1]};transport={proto.lower()}"
        seen: list[SipMessage] = []
        answers: list[SipMessage | None] = []

        def record(message: SipMessage, respond: Responder) -> bool:
            if message.header("call-id") == tag:
                seen.append(message)
            return False

        raw = self._raw
        raw.on_request("OPTIONS", record)
        try:
            request = OutgoingRequest(
                "OPTIONS",
                uri,
                f"<{uri}>;tag=a{tag[-8:]}",
                f"<{uri}>",
                tag,
                1,
                f"<{uri}>",
                headers=(("Subject", tag),),
                content_type="text/plain",
                body=tag.encode(),
            )
            raw.send(request, answers.append, int(timeout * 1000))
            deadline = time.monotonic() + timeout
            while not answers and time.monotonic() < deadline:
                raw.ep.libHandleEvents(10)
        finally:
            raw.remove_handler("OPTIONS", record)
        if not seen or seen[0].header("subject") != tag or seen[0].body != tag.encode():
            raise LayoutError("a request built by the sender did not arrive as built")
        answer = answers[0] if answers else None
        if answer is None or answer.status != 200 or answer.call_id != tag:
            raise LayoutError("the answer to our own OPTIONS was not read back from its event")

    def _looks_like_request(self, msg: int, method: bytes) -> bool:
        header_list = pjproject.MSG_HDR_OFFSET
        head = self._memory.read(msg, header_list + 16) if msg else b""
        if len(head) < header_list + 16:
            return False
        # type, pad, request line: method.id, pad, method.name {ptr, slen}
        msg_type, _, name_ptr, name_len = struct.unpack_from("<i4xi4xQq", head, 0)
        if msg_type != pjproject.MSG_TYPE_REQUEST or name_len != len(method):
            return False
        if self._memory.read(name_ptr, name_len) != method:
            return False
        # The header list must be a ring that comes back to its head.
        head_address = msg + header_list
        node = self._memory.pointer(head_address + 8)
        for _ in range(64):
            if node == head_address:
                return True
            if not node:
                return False
            node = self._memory.pointer(node + 8)
        return False


def invite_callback_table() -> tuple[int, dict[str, int]]:
    """The address of pjsip's `mod_inv.cb` and its entries by name, once checked.

    Raises LayoutError if the table is not where, or not what, pjsua 2.15.1 makes it."""
    lib = pjproject.library()
    base = lib.pjsip_inv_usage_instance()
    if not base:
        raise LayoutError("pjsip_inv_usage_instance() is NULL")
    module_size = ctypes.sizeof(PjsipModule)
    endpt = VoidP.from_address(base + module_size).value
    if endpt != lib.pjsua_get_pjsip_endpt():
        raise LayoutError("mod_inv.endpt is not pjsua's endpoint: layout differs")
    table = base + module_size + ctypes.sizeof(VoidP)
    slots = (VoidP * len(pjproject.INV_CALLBACKS)).from_address(table)
    entries: dict[str, int] = {
        name: slots[i] or 0 for i, name in enumerate(pjproject.INV_CALLBACKS)
    }
    code = pjproject.code_ranges()
    set_names = {name for name, address in entries.items() if address}
    for name in set_names:
        if not any(start <= entries[name] < end for start, end in code):
            raise LayoutError(f"mod_inv.cb.{name} does not point into pjsua2's code")
    if not PJSUA_SETS <= set_names <= PJSUA_SETS | PJSUA_MAY_SET:
        raise LayoutError(
            f"pjsua sets {sorted(set_names)}, 2.15.1 sets {sorted(PJSUA_SETS)}: the table changed"
        )
    return table, entries
