"""Raw SIP through pjsip: a request hook and a request sender, via ctypes.

pjsua2 hides the SIP messages that our event packages need: pjsip answers
NOTIFYs of subscriptions it does not know with 481/500 before any pjsua2
callback runs, and `Account.sendRequest` cannot send in-dialog requests. This
module closes the gap with pjsip's public, exported C API:

* **Request hook.** A `pjsip_module` registered with
  `pjsip_endpt_register_module` at priority 31, i.e. after the transaction
  layer (16) and before the dialog layer (32), sees every incoming request that
  is not a retransmission. Handlers registered per method get the message as a
  `SipMessage` and may answer it statelessly (`pjsip_endpt_respond_stateless`)
  and claim it; everything unclaimed goes on to pjsua (calls, buddies).
* **Request sender.** `pjsip_endpt_create_request_from_hdr` builds a request
  whose From tag, To tag, Call-ID and CSeq we choose (so we can keep a dialog
  in Python); extra headers are parsed by `pjsip_parse_hdr` into typed pjsip
  headers (a Route header is routed on, an Authorization header is printed
  right) and appended to the message's header list with
  `pj_list_insert_before`. `pjsip_endpt_send_request` sends it in a UAC
  transaction (retransmissions, timer B) and reports the final response.

Structures used at fixed offsets are the ones pjsip has kept since 2.0 and that
the 2.15.1 headers define publicly: `pjsip_module`, `pj_str_t`, `pjsip_method`,
`pjsip_event` (tsx_state.src at 24, tsx_state.type at 44), `pjsip_msg` (header
list at 40), and the first fields of `pjsip_tx_data` (pool at 16).

Two offsets depend on the build (`PJSIP_MAX_PKT_LEN`, `PJ_MAX_OBJ_NAME`, the
ioqueue) and are *derived* at start-up by `RawSip.self_test()`:

* `pjsip_rx_data.msg_info.msg_buf`: tagged OPTIONS are sent to our own
  transports (two of different lengths over UDP, and two over TCP, for each
  of them that exists). In the hook the rdata is read with `pread` on `/proc/self/mem` (an
  unmapped page ends the read instead of crashing); the first pointer to the
  received text that lies after the text is `msg_buf`; the int after it must be
  the length, and `pjsip_msg_print` of the pointer at +16 (`msg_info.msg`) must
  reproduce the request. Every run must agree.
* `pjsip_tx_data.msg`: a request is built with a unique Call-ID, the tx data is
  scanned for a pointer to a `pjsip_msg` of type request whose method name
  reads back, whose header list is a closed ring, and which `pjsip_msg_print`s
  with that Call-ID; a header added through that pointer must print too, and
  so must a body stored in `pjsip_msg.body` (+104, NULL before). The pool at
  +16 must carry pjsip's `tdta` name.

Last, a round trip: an OPTIONS with a header and a body is sent to our own
transport through `send`; the hook must read it as built, and pjsua's 200
must come back through the transaction event. If any check fails,
`self_test` raises `LayoutError` and the phone refuses to start. Until the self-test has passed the hook claims nothing.

All callbacks run where pjsip runs them: in poll mode that is inside
`ep.libHandleEvents` on the event-loop thread. Handlers must not block; they
schedule further work with `loop.call_soon`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import struct
import time
import uuid
from collections.abc import Callable
from ctypes import CFUNCTYPE, POINTER, Structure, byref, c_char_p, c_int, c_size_t, c_ssize_t
from ctypes import c_void_p as VoidP
from dataclasses import dataclass, field
from typing import Any

from phone.sip.message import MessageError, SipMessage

log = logging.getLogger(__name__)

PRIORITY_BEFORE_DIALOG = 31  # PJSIP_MOD_PRIORITY_UA_PROXY_LAYER (32) - 1
_EVENT_TSX_STATE = 5  # pjsip_event_id_e
_EVENT_RX_MSG = 3
_REQUEST_MSG = 0  # pjsip_msg_type_e
_MSG_HDR_OFFSET = 40  # pjsip_msg.hdr: type(4)+pad(4)+request line(32)
_MSG_BODY_OFFSET = 104  # pjsip_msg.body: after hdr, a pjsip_hdr of 64 bytes
_TDATA_POOL_OFFSET = 16  # pjsip_tx_data.pool after PJ_DECL_LIST_MEMBER
_POOL_NAME_OFFSET = 16  # pj_pool_t.obj_name after PJ_DECL_LIST_MEMBER
_HDR_SIZE = 64  # pjsip_hdr: prev, next, type, name, sname, vptr
_RDATA_SCAN = 65536
_TDATA_SCAN = 2048


class LayoutError(RuntimeError):
    """pjsip's memory is not laid out as this module checked; refuse to run."""


class SendError(RuntimeError):
    """pjsip refused to build or send a request."""


class PjStr(Structure):
    _fields_ = [("ptr", VoidP), ("slen", c_ssize_t)]


class _PjsipMethod(Structure):
    _fields_ = [("id", c_int), ("name", PjStr)]


_ON_RX = CFUNCTYPE(c_int, VoidP)
_ON_TX = CFUNCTYPE(c_int, VoidP)
_ON_TSX = CFUNCTYPE(None, VoidP, VoidP)
_SEND_CB = CFUNCTYPE(None, VoidP, VoidP)


class _PjsipModule(Structure):
    """`pjsip_module` (pjsip/sip_module.h), unchanged since 2.0."""

    _fields_ = [
        ("prev", VoidP),
        ("next", VoidP),
        ("name", PjStr),
        ("id", c_int),
        ("priority", c_int),
        ("load", VoidP),
        ("start", VoidP),
        ("stop", VoidP),
        ("unload", VoidP),
        ("on_rx_request", _ON_RX),
        ("on_rx_response", _ON_RX),
        ("on_tx_request", _ON_TX),
        ("on_tx_response", _ON_TX),
        ("on_tsx_state", _ON_TSX),
    ]


class _Pjsip:
    """The exported pjsip functions we call, bound with their C signatures."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        def bind(name: str, restype: Any, *argtypes: Any) -> Any:
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = list(argtypes)
            return function

        self.get_endpt = bind("pjsua_get_pjsip_endpt", VoidP)
        self.register_module = bind("pjsip_endpt_register_module", c_int, VoidP, VoidP)
        self.unregister_module = bind("pjsip_endpt_unregister_module", c_int, VoidP, VoidP)
        self.respond_stateless = bind(
            "pjsip_endpt_respond_stateless", c_int, VoidP, VoidP, c_int, VoidP, VoidP, VoidP
        )
        self.msg_print = bind("pjsip_msg_print", c_ssize_t, VoidP, VoidP, c_size_t)
        self.pool_create = bind("pjsua_pool_create", VoidP, c_char_p, c_size_t, c_size_t)
        self.pool_release = bind("pj_pool_release", None, VoidP)
        self.pool_alloc = bind("pj_pool_alloc", VoidP, VoidP, c_size_t)
        self.parse_uri = bind("pjsip_parse_uri", VoidP, VoidP, VoidP, c_size_t, c_int)
        self.parse_hdr = bind("pjsip_parse_hdr", VoidP, VoidP, VoidP, VoidP, c_size_t, VoidP)
        self.method_init_np = bind("pjsip_method_init_np", None, VoidP, VoidP)
        self.create_request_from_hdr = bind(
            "pjsip_endpt_create_request_from_hdr",
            c_int,
            VoidP,
            VoidP,
            VoidP,
            VoidP,
            VoidP,
            VoidP,
            VoidP,
            c_int,
            VoidP,
            POINTER(VoidP),
        )
        self.list_insert_before = bind("pj_list_insert_before", None, VoidP, VoidP)
        self.send_request = bind(
            "pjsip_endpt_send_request", c_int, VoidP, VoidP, c_int, VoidP, _SEND_CB
        )
        self.tdata_dec_ref = bind("pjsip_tx_data_dec_ref", c_int, VoidP)
        self.find_dialog = bind("pjsip_ua_find_dialog", VoidP, VoidP, VoidP, VoidP, c_int)
        self.strerror = bind("pj_strerror", PjStr, c_int, VoidP, c_size_t)
        self.body_create = bind("pjsip_msg_body_create", VoidP, VoidP, VoidP, VoidP, VoidP)
        self.acc_contact = bind("pjsua_acc_create_uac_contact", c_int, VoidP, VoidP, c_int, VoidP)

    def error_text(self, status: int) -> str:
        buf = ctypes.create_string_buffer(160)
        self.strerror(status, buf, len(buf))
        return f"{status} ({buf.value.decode(errors='replace')})"


class _Memory:
    """Reads process memory without risking SIGSEGV: `pread` on /proc/self/mem."""

    def __init__(self) -> None:
        self._fd = os.open("/proc/self/mem", os.O_RDONLY)

    def read(self, address: int, size: int) -> bytes:
        chunks: list[bytes] = []
        while size > 0:
            step = min(size, 4096 - address % 4096)
            try:
                chunk = os.pread(self._fd, step, address)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            address += len(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def pointer(self, address: int) -> int:
        data = self.read(address, 8)
        return struct.unpack("<Q", data)[0] if len(data) == 8 else 0

    def close(self) -> None:
        os.close(self._fd)


def make_pj_str(text: bytes | str, keep: list[Any]) -> PjStr:
    """A `pj_str_t` over a copy of `text`; `keep` holds the copy alive."""
    if isinstance(text, str):
        text = text.encode()
    buffer = ctypes.create_string_buffer(text)
    keep.append(buffer)
    return PjStr(ctypes.cast(buffer, VoidP), len(text))


@dataclass(frozen=True)
class OutgoingRequest:
    """A request whose dialog identifiers we own (RFC 3261 section 12.2.1.1)."""

    method: str
    target: str  # Request-URI
    from_: str  # name-addr with ;tag=
    to: str  # name-addr, with ;tag= once the dialog exists
    call_id: str
    cseq: int
    contact: str
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None  # type/subtype, no parameters
    body: bytes = b""


@dataclass(frozen=True)
class LayoutReport:
    """What the self-test derived, for the start-up log."""

    rx_msg_buf_offset: int
    tx_msg_offset: int
    probes: tuple[str, ...] = field(default=())


class Responder:
    """Answers one incoming request statelessly; valid only during the handler call
    (pjsip frees the rdata afterwards). `rdata` is the `pjsip_rx_data*` for
    handlers that take the request on into pjsip (a dialog, an invite session)."""

    def __init__(self, raw: RawSip, rdata: int) -> None:
        self._raw = raw
        self.rdata = rdata

    def __call__(self, code: int, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Send the final response `code`, with `headers` (e.g. Retry-After) added."""
        self._raw._respond(self.rdata, code, headers)


RequestHandler = Callable[[SipMessage, Responder], bool]
"""Gets an incoming request and its `Responder`; returns True to claim it."""


class RawSip:
    """The pjsip request hook and request sender for one pjsua2 Endpoint."""

    def __init__(self, ep: Any, lib: ctypes.CDLL, priority: int = PRIORITY_BEFORE_DIALOG) -> None:
        self._ep = ep
        self._c = _Pjsip(lib)
        self._memory = _Memory()
        self._endpt: int = self._c.get_endpt()
        if not self._endpt:
            raise LayoutError("pjsua has no pjsip endpoint (call after libInit)")
        self._rx_offset: int | None = None
        self._tx_msg_offset: int | None = None
        self._probe: dict[str, Any] | None = None
        self._handlers: dict[str, list[RequestHandler]] = {}
        self._pending: dict[int, Callable[[SipMessage | None], None]] = {}
        self._next_token = 1
        self._keep: list[Any] = []
        self._module = _PjsipModule()
        # pjsip refuses two modules with one name; tests may build more than one hook.
        self._module.name = make_pj_str(f"mod-rawsip-{id(self):x}".encode(), self._keep)
        self._module.id = -1
        self._module.priority = priority
        self._on_rx_request_c = _ON_RX(self._on_rx_request)
        self._module.on_rx_request = self._on_rx_request_c
        self._on_sent_c = _SEND_CB(self._on_send_done)
        status = self._c.register_module(self._endpt, byref(self._module))
        if status != 0:
            raise LayoutError(f"pjsip_endpt_register_module: {self._c.error_text(status)}")
        log.info("request hook registered: module id %d, priority %d", self._module.id, priority)

    @property
    def ready(self) -> bool:
        return self._rx_offset is not None and self._tx_msg_offset is not None

    # ------------------------------------------------------------------ self-test

    def self_test(self, timeout: float = 3.0) -> LayoutReport:
        """Derive and check the build-dependent offsets; raise LayoutError on any doubt."""
        transports = self._transports()
        # Two probes of different lengths per kind (UDP, TCP) that we listen on.
        plan = []
        for kind in ("UDP", "TCP"):
            address = next((a for k, a in transports if k == kind), None)
            if address is not None:
                plan += [(kind, address, 0), (kind, address, 300)]
        if not plan:
            raise LayoutError("self-test needs a UDP or TCP transport")
        offsets: set[int] = set()
        probes: list[str] = []
        for proto, address, pad in plan:
            offset = self._probe_rx(proto, address, pad, timeout)
            offsets.add(offset)
            probes.append(f"{proto}+{pad}:{offset}")
        if len(offsets) != 1:
            raise LayoutError(f"msg_info.msg_buf offsets disagree: {probes}")
        self._rx_offset = offsets.pop()
        self._tx_msg_offset = self._probe_tx(plan[0][1])
        try:
            self._probe_round_trip(plan[0][0], plan[0][1], timeout)
        except LayoutError:
            self._rx_offset = self._tx_msg_offset = None
            raise
        report = LayoutReport(self._rx_offset, self._tx_msg_offset, tuple(probes))
        log.info(
            "pjsip layout self-test passed: rdata.msg_info at %d, tdata.msg at %d (%s)",
            report.rx_msg_buf_offset,
            report.tx_msg_offset,
            ", ".join(probes),
        )
        return report

    def _transports(self) -> list[tuple[str, tuple[str, int]]]:
        found = []
        for transport_id in self._ep.transportEnum():
            info = self._ep.transportGetInfo(transport_id)
            host, _, port = info.localName.rpartition(":")
            found.append((info.typeName.upper(), (host.strip("[]"), int(port))))
        return found

    def _probe_rx(self, proto: str, address: tuple[str, int], pad: int, timeout: float) -> int:
        tag = "selftest-" + uuid.uuid4().hex
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
        self._probe = {"tag": tag.encode(), "text": text, "result": None}
        kind = socket.SOCK_DGRAM if proto == "UDP" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as sock:
            if proto == "UDP":
                sock.sendto(text, address)
            else:
                sock.settimeout(timeout)
                sock.connect(address)
                sock.sendall(text)
            deadline = time.monotonic() + timeout
            while self._probe["result"] is None and time.monotonic() < deadline:
                self._ep.libHandleEvents(10)
        result = self._probe["result"]
        self._probe = None
        if result is None:
            raise LayoutError(f"self-test over {proto}: the hook never saw the probe request")
        if isinstance(result, LayoutError):
            raise result
        return int(result)

    def _locate_msg_info(self, rdata: int, raw: bytes, sent: bytes, tag: bytes) -> int:
        index = raw.find(sent)
        if index < 0:
            raise LayoutError("probe text not found in rdata")
        needle = struct.pack("<Q", rdata + index)
        start = (index + len(sent) + 7) & ~7
        hit = next((i for i in range(start, len(raw) - 24, 8) if raw[i : i + 8] == needle), None)
        if hit is None:
            raise LayoutError("no msg_info.msg_buf pointer after the packet text")
        length = struct.unpack_from("<i", raw, hit + 8)[0]
        msg = struct.unpack_from("<Q", raw, hit + 16)[0]
        if length != len(sent):
            raise LayoutError(f"msg_info.len is {length}, sent {len(sent)}")
        printed = self._print(msg)
        if tag not in printed or not printed.startswith(sent.split(b"\r\n", 1)[0]):
            raise LayoutError("pjsip_msg_print(msg_info.msg) does not reproduce the probe")
        return hit

    def _print(self, msg: int) -> bytes:
        if not msg or len(self._memory.read(msg, 64)) < 64:
            return b""
        buffer = ctypes.create_string_buffer(65536)
        size = self._c.msg_print(msg, buffer, len(buffer))
        return buffer.raw[:size] if size > 0 else b""

    def _probe_tx(self, address: tuple[str, int]) -> int:
        call_id = "selftest-" + uuid.uuid4().hex
        uri = f"sip:selftest@{address[0]}:{address[1]}"
        request = OutgoingRequest(
            "OPTIONS", uri, f"<{uri}>;tag=a{call_id}", f"<{uri}>", call_id, 1, f"<{uri}>"
        )
        tdata = self._create(request)
        try:
            name = self._memory.read(tdata + 24, 4)
            pool = self._memory.pointer(tdata + _TDATA_POOL_OFFSET)
            if name != b"tdta" or self._memory.read(pool + _POOL_NAME_OFFSET, 4) != b"tdta":
                raise LayoutError("pjsip_tx_data does not start with list, pool, obj_name")
            raw = self._memory.read(tdata, _TDATA_SCAN)
            for offset in range(32, len(raw) - 8, 8):
                msg = struct.unpack_from("<Q", raw, offset)[0]
                if self._looks_like_request(msg, b"OPTIONS") and call_id.encode() in self._print(
                    msg
                ):
                    break
            else:
                raise LayoutError("pjsip_tx_data.msg not found")
            self._tx_msg_offset = offset
            self.add_headers(tdata, (("Subject", call_id[::-1]),))
            if call_id[::-1].encode() not in self._print(msg):
                raise LayoutError("a header added to pjsip_tx_data.msg does not print")
            if self._memory.pointer(msg + _MSG_BODY_OFFSET) != 0:
                raise LayoutError("pjsip_msg.body of a request without body is not NULL")
            self._set_body(tdata, "application/x-selftest", call_id.encode())
            printed = self._print(msg)
            if b"Content-Type: application/x-selftest" not in printed or not printed.endswith(
                call_id.encode()
            ):
                raise LayoutError("a body set on pjsip_tx_data.msg does not print")
            return offset
        finally:
            self._tx_msg_offset = None
            self._c.tdata_dec_ref(tdata)

    def _probe_round_trip(self, proto: str, address: tuple[str, int], timeout: float) -> None:
        """Send ourselves an OPTIONS with a header and a body through `send`: the hook
        must see both as sent, and pjsua's 200 must come back through the
        transaction's `pjsip_event` (src at 24, src type at 44)."""
        tag = "selftest-" + uuid.uuid4().hex
        uri = f"sip:selftest@{address[0]}:{address[1]};transport={proto.lower()}"
        seen: list[SipMessage] = []
        answers: list[SipMessage | None] = []

        def record(message: SipMessage, respond: Responder) -> bool:
            if message.header("call-id") == tag:
                seen.append(message)
            return False

        self.on_request("OPTIONS", record)
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
            self.send(request, answers.append, int(timeout * 1000))
            deadline = time.monotonic() + timeout
            while not answers and time.monotonic() < deadline:
                self._ep.libHandleEvents(10)
        finally:
            self.remove_handler("OPTIONS", record)
        if not seen or seen[0].header("subject") != tag or seen[0].body != tag.encode():
            raise LayoutError("a request built by the sender did not arrive as built")
        answer = answers[0] if answers else None
        if answer is None or answer.status != 200 or answer.call_id != tag:
            raise LayoutError("the answer to our own OPTIONS was not read back from its event")

    def _looks_like_request(self, msg: int, method: bytes) -> bool:
        head = self._memory.read(msg, _MSG_HDR_OFFSET + 16) if msg else b""
        if len(head) < _MSG_HDR_OFFSET + 16:
            return False
        # type, pad, request line: method.id, pad, method.name {ptr, slen}
        msg_type, _, name_ptr, name_len = struct.unpack_from("<i4xi4xQq", head, 0)
        if msg_type != _REQUEST_MSG or name_len != len(method):
            return False
        if self._memory.read(name_ptr, name_len) != method:
            return False
        # The header list must be a ring that comes back to its head.
        head_address = msg + _MSG_HDR_OFFSET
        node = self._memory.pointer(head_address + 8)
        for _ in range(64):
            if node == head_address:
                return True
            if not node:
                return False
            node = self._memory.pointer(node + 8)
        return False

    # ------------------------------------------------------------------ incoming

    def on_request(self, method: str, handler: RequestHandler) -> None:
        """Offer incoming `method` requests to `handler` (before pjsua sees them)."""
        self._handlers.setdefault(method.upper(), []).append(handler)

    def remove_handler(self, method: str, handler: RequestHandler) -> None:
        self._handlers.get(method.upper(), []).remove(handler)

    def dialog_exists(self, call_id: str, local_tag: str, remote_tag: str) -> bool:
        """Whether pjsip itself (pjsua calls, buddies) owns this dialog."""
        keep: list[Any] = []
        found = self._c.find_dialog(
            byref(make_pj_str(call_id.encode(), keep)),
            byref(make_pj_str(local_tag.encode(), keep)),
            byref(make_pj_str(remote_tag.encode(), keep)),
            0,
        )
        return bool(found)

    def account_contact(self, account_id: int, target: str) -> str:
        """The Contact pjsua would put in a request from `account_id` to `target`.

        It names the transport pjsua picks for that target, as its own
        requests do (`pjsua_acc_create_uac_contact`).
        """
        keep: list[Any] = []
        pool = self._c.pool_create(b"rawsip-contact", 512, 512)
        try:
            contact = PjStr()
            status = self._c.acc_contact(
                pool, byref(contact), account_id, byref(make_pj_str(target.encode(), keep))
            )
            if status != 0 or not contact.ptr:
                raise SendError(f"no contact for {target}: {self._c.error_text(status)}")
            return ctypes.string_at(contact.ptr, contact.slen).decode()
        finally:
            self._c.pool_release(pool)

    def _rdata_text(self, rdata: int) -> bytes:
        assert self._rx_offset is not None
        buf, length = struct.unpack("<Qi", ctypes.string_at(rdata + self._rx_offset, 12))
        if not buf or not 0 < length <= 1 << 20:
            raise LayoutError(f"rdata msg_info has buf={buf:#x} len={length}")
        return ctypes.string_at(buf, length)

    def _on_rx_request(self, rdata: int) -> int:
        # An exception must never unwind into C: log it and let pjsip go on.
        try:
            if self._probe is not None and self._probe["result"] is None:
                return self._on_probe(rdata)
            if self._rx_offset is None or not self._handlers:
                return 0
            text = self._rdata_text(rdata)
            method = text[: text.find(b" ")].decode("ascii", "replace").upper()
            handlers = self._handlers.get(method)
            if not handlers:
                return 0
            try:
                message = SipMessage.parse(text)
            except MessageError as exc:
                log.warning("unreadable %s request: %s", method, exc)
                self._respond(rdata, 400, ())
                return 1

            respond = Responder(self, rdata)
            return int(any(handler(message, respond) for handler in handlers))
        except Exception:
            log.exception("request hook failed; passing the request on to pjsip")
            return 0

    def _on_probe(self, rdata: int) -> int:
        assert self._probe is not None
        raw = self._memory.read(rdata, _RDATA_SCAN)
        if self._probe["tag"] not in raw:
            return 0
        try:
            self._probe["result"] = self._locate_msg_info(
                rdata, raw, self._probe["text"], self._probe["tag"]
            )
        except LayoutError as exc:
            self._probe["result"] = exc
        self._respond(rdata, 200, ())
        return 1

    # ------------------------------------------------------------------ outgoing

    def send(
        self,
        request: OutgoingRequest,
        on_response: Callable[[SipMessage | None], None],
        timeout_ms: int = -1,
    ) -> None:
        """Send `request` in a UAC transaction; `on_response` gets the final response.

        It gets None when the transaction timed out (timer B, or `timeout_ms`)
        or the transport failed.
        """
        if not self.ready:
            raise SendError("request sender used before the layout self-test passed")
        tdata = self._create(request)
        try:
            self.add_headers(tdata, request.headers)
            if request.body or request.content_type:
                self._set_body(tdata, request.content_type or "text/plain", request.body)
        except SendError:
            self._c.tdata_dec_ref(tdata)
            raise
        token = self._next_token
        self._next_token += 1
        self._pending[token] = on_response
        status = self._c.send_request(self._endpt, tdata, timeout_ms, token, self._on_sent_c)
        if status != 0:
            self._pending.pop(token, None)
            raise SendError(f"{request.method} not sent: {self._c.error_text(status)}")

    def _create(self, request: OutgoingRequest) -> int:
        keep: list[Any] = []
        pool = self._c.pool_create(b"rawsip", 2048, 1024)
        if not pool:
            raise SendError("out of memory")
        try:

            def parse_header(name: str, value: str) -> int:
                data = value.encode()
                header = self._c.parse_hdr(
                    pool,
                    byref(make_pj_str(name.encode(), keep)),
                    _buffer(data, keep),
                    len(data),
                    None,
                )
                if not header:
                    raise SendError(f"pjsip cannot parse {name}: {value!r}")
                return int(header)

            target_bytes = request.target.encode()
            target = self._c.parse_uri(pool, _buffer(target_bytes, keep), len(target_bytes), 0)
            if not target:
                raise SendError(f"pjsip cannot parse request URI {request.target!r}")
            method = _PjsipMethod()
            self._c.method_init_np(byref(method), byref(make_pj_str(request.method.encode(), keep)))
            tdata = VoidP()
            status = self._c.create_request_from_hdr(
                self._endpt,
                byref(method),
                target,
                parse_header("From", request.from_),
                parse_header("To", request.to),
                parse_header("Contact", request.contact),
                parse_header("Call-ID", request.call_id),
                request.cseq,
                None,
                byref(tdata),
            )
            if status != 0 or not tdata.value:
                raise SendError(f"cannot create {request.method}: {self._c.error_text(status)}")
            return int(tdata.value)
        finally:
            self._c.pool_release(pool)

    def add_headers(self, tdata: int, headers: tuple[tuple[str, str], ...]) -> None:
        """Append parsed headers to a `pjsip_tx_data` pjsip built (a request or response)."""
        offset = self._tx_msg_offset
        assert offset is not None
        pool = self._memory.pointer(tdata + _TDATA_POOL_OFFSET)
        self._append_headers(pool, self._memory.pointer(tdata + offset) + _MSG_HDR_OFFSET, headers)

    def _append_headers(self, pool: int, head: int, headers: tuple[tuple[str, str], ...]) -> None:
        """Parse `headers` into `pool` and append them to the pjsip header list at `head`."""
        keep: list[Any] = []
        for name, value in headers:
            data = value.encode()
            # The parsed header points into its text: both must live in the pool.
            text = self._c.pool_alloc(pool, len(data) + 1)
            ctypes.memmove(text, data + b"\0", len(data) + 1)
            header = self._c.parse_hdr(
                pool, byref(make_pj_str(name.encode(), keep)), text, len(data), None
            )
            if not header:
                raise SendError(f"pjsip cannot parse {name}: {value!r}")
            self._c.list_insert_before(head, header)

    def _respond(self, rdata: int, code: int, headers: tuple[tuple[str, str], ...]) -> None:
        """`pjsip_endpt_respond_stateless`; it copies the headers of a list we build."""
        head = None
        pool = self._c.pool_create(b"rawsip-response", 512, 512) if headers else None
        try:
            if pool:
                head = ctypes.create_string_buffer(_HDR_SIZE)  # a pjsip_hdr: the list head
                address = ctypes.addressof(head)
                ctypes.memmove(address, struct.pack("<QQ", address, address), 16)  # pj_list_init
                self._append_headers(pool, address, headers)
            status = self._c.respond_stateless(self._endpt, rdata, code, None, head, None)
            if status != 0:
                log.warning("responding %d failed: %s", code, self._c.error_text(status))
        finally:
            if pool:
                self._c.pool_release(pool)

    def _set_body(self, tdata: int, content_type: str, body: bytes) -> None:
        main, slash, sub = content_type.partition("/")
        if not slash or not main or not sub:
            raise SendError(f"bad content type {content_type!r}")
        offset = self._tx_msg_offset
        assert offset is not None
        pool = self._memory.pointer(tdata + _TDATA_POOL_OFFSET)
        msg = self._memory.pointer(tdata + offset)
        keep: list[Any] = []
        created = self._c.body_create(
            pool,
            byref(make_pj_str(main.strip().encode(), keep)),
            byref(make_pj_str(sub.strip().encode(), keep)),
            byref(make_pj_str(body, keep)),
        )
        if not created:
            raise SendError("pjsip_msg_body_create failed")
        ctypes.c_void_p.from_address(msg + _MSG_BODY_OFFSET).value = created

    def event_message(self, event: int) -> SipMessage | None:
        """The message a `pjsip_event` of a transaction carries in, if one came in."""
        if not event:
            return None  # pjsip passes NULL events, e.g. on pjsip_inv_terminate
        event_type, source, source_type = _read_tsx_event(event)
        if event_type != _EVENT_TSX_STATE or source_type != _EVENT_RX_MSG or not source:
            return None
        return SipMessage.parse(self._rdata_text(source))

    def _on_send_done(self, token: int, event: int) -> None:
        try:
            callback = self._pending.pop(int(token or 0), None)
            if callback is None:
                return
            response = None
            try:
                response = self.event_message(event)
            except MessageError as exc:
                log.warning("unreadable response: %s", exc)
            callback(response)
        except Exception:
            log.exception("response handler failed")

    def close(self) -> None:
        """Unregister the module (before `libDestroy`)."""
        status = self._c.unregister_module(self._endpt, byref(self._module))
        if status != 0:
            log.warning("unregistering the request hook: %s", self._c.error_text(status))
        self._memory.close()


def _buffer(data: bytes, keep: list[Any]) -> Any:
    buffer = ctypes.create_string_buffer(data)
    keep.append(buffer)
    return buffer


def _read_tsx_event(event: int) -> tuple[int, int, int]:
    """(event type, tsx_state.src, tsx_state.type) of a `pjsip_event` (sip_event.h)."""
    event_type = ctypes.c_int.from_address(event + 16).value
    source = ctypes.c_void_p.from_address(event + 24).value or 0
    source_type = ctypes.c_int.from_address(event + 44).value
    return event_type, source, source_type
