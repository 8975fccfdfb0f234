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
* **Transmit observer.** The same module's `on_tx_request`/`on_tx_response`
  tell `on_transmit` of every message pjsip sends, so the loop can watch a
  connection or a timer that the send created.

The C functions, structures and fixed offsets come from `phone.pjproject`. Two
offsets depend on the build; `phone.sip.layout.self_test` derives and checks
them at start-up and stores them in `RawSip.offsets`. Until then the hook
claims nothing and the sender sends nothing.

All callbacks run where pjsip runs them: in poll mode that is inside
`ep.libHandleEvents` on the event-loop thread. Handlers must not block; they
schedule further work with `loop.call_soon`.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct
from collections.abc import Callable
from ctypes import byref
from ctypes import c_void_p as VoidP
from dataclasses import dataclass
from typing import Any

from phone import pjproject
from phone.pjproject import (
    HDR_SIZE,
    MSG_BODY_OFFSET,
    MSG_HDR_OFFSET,
    PKT_INFO_TAIL,
    PKT_LEN_SIZE,
    PKT_ZERO_SIZE,
    SEND_CALLBACK,
    TDATA_POOL_OFFSET,
    LayoutError,
    Memory,
    PjsipMethod,
    PjsipModule,
    PjStr,
    error_text,
    make_pj_str,
)
from phone.pjsua_callback import c_callback
from phone.sip.message import MessageError, SipMessage
from phone.sip.oversize import OversizeGuard

log = logging.getLogger(__name__)

PRIORITY_BEFORE_DIALOG = 31  # PJSIP_MOD_PRIORITY_UA_PROXY_LAYER (32) - 1


class SendError(RuntimeError):
    """pjsip refused to build or send a request."""


@dataclass(frozen=True)
class OutgoingRequest:
    """A request whose dialog identifiers we own (RFC 3261 section 12.2.1.1)."""

    method: str
    target: str  # Request-URI
    from_: str  # name-addr with ;tag=
    to: str  # name-addr, with ;tag= once the dialog exists
    call_id: str
    cseq: int
    contact: str | None  # None: no Contact (a REGISTER that queries bindings)
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None  # type/subtype, no parameters
    body: bytes = b""


@dataclass
class DerivedOffsets:
    """The build-dependent offsets that `phone.sip.layout.self_test` derives."""

    rx_msg_buf: int | None = None  # pjsip_rx_data.msg_info.msg_buf
    tx_msg: int | None = None  # pjsip_tx_data.msg
    rx_packet: int | None = None  # pjsip_rx_data.pkt_info.packet

    @property
    def rx_packet_room(self) -> int | None:
        """The most PJSIP_MAX_PKT_LEN can be: `packet[]` is followed by a 4-byte
        `zero` and, 8-aligned, the `len` and the `PKT_INFO_TAIL` before `msg_info`;
        the real size is at most 7 bytes less (4000 in the wheel, 16000 on the image)."""
        if self.rx_msg_buf is None or self.rx_packet is None:
            return None
        return self.rx_msg_buf - PKT_INFO_TAIL - PKT_LEN_SIZE - PKT_ZERO_SIZE - self.rx_packet


class Responder:
    """Answers one incoming request statelessly; valid only during the handler call
    (pjsip frees the rdata afterwards). `rdata` is the `pjsip_rx_data*` for
    handlers that take the request on into pjsip (a dialog, an invite session)."""

    def __init__(self, raw: RawSip, rdata: int) -> None:
        self._raw = raw
        self.rdata = rdata

    def __call__(self, code: int, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Send the final response `code`, with `headers` (e.g. Retry-After) added."""
        self._raw.respond(self.rdata, code, headers)


RequestHandler = Callable[[SipMessage, Responder], bool]
"""Gets an incoming request and its `Responder`; returns True to claim it."""


class RawSip:
    """The pjsip request hook and request sender for one pjsua2 Endpoint."""

    def __init__(self, ep: Any, priority: int = PRIORITY_BEFORE_DIALOG) -> None:
        self.ep = ep
        self._lib = pjproject.library()
        self.memory = Memory()
        self._endpt: int = self._lib.pjsua_get_pjsip_endpt()
        if not self._endpt:
            raise LayoutError("pjsua has no pjsip endpoint (call after libInit)")
        self.offsets = DerivedOffsets()
        # The layout self-test's probe sees each request first while it runs.
        self.probe: Callable[[int], bool] | None = None
        self._handlers: dict[str, list[RequestHandler]] = {}
        self._pending: dict[int, Callable[[SipMessage | None], None]] = {}
        self._next_token = 1
        self._keep: list[Any] = []
        self._module = PjsipModule()
        # pjsip refuses two modules with one name; tests may build more than one hook.
        self._module.name = make_pj_str(f"mod-rawsip-{id(self):x}".encode(), self._keep)
        self._module.id = -1
        self._module.priority = priority
        # A failure is logged and the request passed on to pjsip (phone.pjsua_callback).
        self._on_rx_request_c = c_callback(pjproject.ON_RX, self._on_rx_request, 0)
        self._module.on_rx_request = self._on_rx_request_c
        # Told of every message pjsip sends, whoever sent it (phone.sip.wakeups).
        self.on_transmit: Callable[[], None] | None = None
        self._on_tx_c = c_callback(pjproject.ON_TX, self._on_tx, 0)  # 0: sent all the same
        self._module.on_tx_request = self._on_tx_c
        self._module.on_tx_response = self._on_tx_c
        self._on_sent_c = c_callback(SEND_CALLBACK, self._on_send_done)
        status = self._lib.pjsip_endpt_register_module(self._endpt, byref(self._module))
        if status != 0:
            raise LayoutError(f"pjsip_endpt_register_module: {error_text(status)}")
        log.info("request hook registered: module id %d, priority %d", self._module.id, priority)
        self.oversize = OversizeGuard(self._lib, self._endpt)

    @property
    def ready(self) -> bool:
        return self.offsets.rx_msg_buf is not None and self.offsets.tx_msg is not None

    def _on_tx(self, tdata: int) -> int:
        if self.on_transmit is not None:
            self.on_transmit()
        return 0  # PJ_SUCCESS: send it

    # ------------------------------------------------------------------ incoming

    def on_request(self, method: str, handler: RequestHandler) -> None:
        """Offer incoming `method` requests to `handler` (before pjsua sees them)."""
        self._handlers.setdefault(method.upper(), []).append(handler)

    def remove_handler(self, method: str, handler: RequestHandler) -> None:
        self._handlers.get(method.upper(), []).remove(handler)

    def dialog_exists(self, call_id: str, local_tag: str, remote_tag: str) -> bool:
        """Whether pjsip itself (pjsua calls, buddies) owns this dialog."""
        keep: list[Any] = []
        found = self._lib.pjsip_ua_find_dialog(
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
        pool = self._lib.pjsua_pool_create(b"rawsip-contact", 512, 512)
        try:
            contact = PjStr()
            status = self._lib.pjsua_acc_create_uac_contact(
                pool, byref(contact), account_id, byref(make_pj_str(target.encode(), keep))
            )
            if status != 0 or not contact.ptr:
                raise SendError(f"no contact for {target}: {error_text(status)}")
            return ctypes.string_at(contact.ptr, contact.slen).decode()
        finally:
            self._lib.pj_pool_release(pool)

    def _rdata_text(self, rdata: int) -> bytes:
        offset = self.offsets.rx_msg_buf
        assert offset is not None
        buf, length = struct.unpack("<Qi", ctypes.string_at(rdata + offset, 12))
        if not buf or not 0 < length <= 1 << 20:
            raise LayoutError(f"rdata msg_info has buf={buf:#x} len={length}")
        return ctypes.string_at(buf, length)

    def source_address(self, rdata: int) -> tuple[str, int]:
        """The address a request came from: `rdata->pkt_info.src_name`/`src_port`.

        `pkt_info` ends right before `msg_info` in every release since 2.0:
        `src_addr` (pj_sockaddr, 28 bytes), `src_addr_len`,
        `src_name[PJ_INET6_ADDRSTRLEN]` (46, padded to 48), `src_port`,
        padding. The text, the port and the socket address must agree, or the
        layout is not what this reads (LayoutError); the self-test checks that
        it reads the probes' own source.
        """
        offset = self.offsets.rx_msg_buf
        assert offset is not None
        return self.source_at(rdata, offset)

    def source_at(self, rdata: int, msg_info_offset: int) -> tuple[str, int]:
        """`source_address` with `msg_info` at `msg_info_offset` (the self-test's guess)."""
        raw = self.memory.read(rdata + msg_info_offset - PKT_INFO_TAIL, PKT_INFO_TAIL)
        if len(raw) < PKT_INFO_TAIL:
            raise LayoutError("rdata pkt_info is not readable")
        family, port_be = struct.unpack_from("<HH", raw, 0)
        name = raw[32:78].split(b"\0", 1)[0].decode("ascii", "replace")
        port = struct.unpack_from("<i", raw, 80)[0]
        if family == socket.AF_INET:
            address = socket.inet_ntop(socket.AF_INET, raw[4:8])
        elif family == socket.AF_INET6:
            address = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        else:
            raise LayoutError(f"rdata pkt_info.src_addr has family {family}")
        if address != name or port != socket.ntohs(port_be):
            raise LayoutError(f"rdata pkt_info disagrees: {name}:{port} vs {address}")
        return name, port

    def _on_rx_request(self, rdata: int) -> int:
        if self.probe is not None and self.probe(rdata):
            return 1
        if self.offsets.rx_msg_buf is None or not self._handlers:
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
            self.respond(rdata, 400, ())
            return 1

        respond = Responder(self, rdata)
        return int(any(handler(message, respond) for handler in handlers))

    # ------------------------------------------------------------------ outgoing

    def send(
        self,
        request: OutgoingRequest,
        on_response: Callable[[SipMessage | None], None],
        timeout_ms: int = -1,
    ) -> None:
        """Send `request` in a UAC transaction; `on_response` gets the final response.

        It gets None when the transaction timed out (timer B, or `timeout_ms`)
        or the transport failed. Either `on_response` runs or `SendError` is
        raised, never both: when the transport refuses the request at once (no
        route: the network is down), pjsip ends the transaction and reports it
        before `pjsip_endpt_send_request` returns its error, and that report
        is the one the caller gets.
        """
        if not self.ready:
            raise SendError("request sender used before the layout self-test passed")
        tdata = self.create(request)
        try:
            self.add_headers(tdata, request.headers)
            if request.body or request.content_type:
                self.set_body(tdata, request.content_type or "text/plain", request.body)
        except SendError:
            self._lib.pjsip_tx_data_dec_ref(tdata)
            raise
        token = self._next_token
        self._next_token += 1
        self._pending[token] = on_response
        status = self._lib.pjsip_endpt_send_request(
            self._endpt, tdata, timeout_ms, token, self._on_sent_c
        )
        if status != 0 and self._pending.pop(token, None) is not None:
            raise SendError(f"{request.method} not sent: {error_text(status)}")

    def create(self, request: OutgoingRequest) -> int:
        keep: list[Any] = []
        pool = self._lib.pjsua_pool_create(b"rawsip", 2048, 1024)
        if not pool:
            raise SendError("out of memory")
        try:

            def parse_header(name: str, value: str) -> int:
                data = value.encode()
                header = self._lib.pjsip_parse_hdr(
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
            target = self._lib.pjsip_parse_uri(
                pool, _buffer(target_bytes, keep), len(target_bytes), 0
            )
            if not target:
                raise SendError(f"pjsip cannot parse request URI {request.target!r}")
            method = PjsipMethod()
            self._lib.pjsip_method_init_np(
                byref(method), byref(make_pj_str(request.method.encode(), keep))
            )
            tdata = VoidP()
            status = self._lib.pjsip_endpt_create_request_from_hdr(
                self._endpt,
                byref(method),
                target,
                parse_header("From", request.from_),
                parse_header("To", request.to),
                None if request.contact is None else parse_header("Contact", request.contact),
                parse_header("Call-ID", request.call_id),
                request.cseq,
                None,
                byref(tdata),
            )
            if status != 0 or not tdata.value:
                raise SendError(f"cannot create {request.method}: {error_text(status)}")
            return int(tdata.value)
        finally:
            self._lib.pj_pool_release(pool)

    def add_headers(self, tdata: int, headers: tuple[tuple[str, str], ...]) -> None:
        """Append parsed headers to a `pjsip_tx_data` pjsip built (a request or response)."""
        offset = self.offsets.tx_msg
        assert offset is not None
        pool = self.memory.pointer(tdata + TDATA_POOL_OFFSET)
        self._append_headers(pool, self.memory.pointer(tdata + offset) + MSG_HDR_OFFSET, headers)

    def _append_headers(self, pool: int, head: int, headers: tuple[tuple[str, str], ...]) -> None:
        """Parse `headers` into `pool` and append them to the pjsip header list at `head`."""
        keep: list[Any] = []
        for name, value in headers:
            data = value.encode()
            # The parsed header points into its text: both must live in the pool.
            text = self._lib.pj_pool_alloc(pool, len(data) + 1)
            ctypes.memmove(text, data + b"\0", len(data) + 1)
            header = self._lib.pjsip_parse_hdr(
                pool, byref(make_pj_str(name.encode(), keep)), text, len(data), None
            )
            if not header:
                raise SendError(f"pjsip cannot parse {name}: {value!r}")
            self._lib.pj_list_insert_before(head, header)

    def respond(self, rdata: int, code: int, headers: tuple[tuple[str, str], ...]) -> None:
        """`pjsip_endpt_respond_stateless`; it copies the headers of a list we build."""
        head = None
        pool = self._lib.pjsua_pool_create(b"rawsip-response", 512, 512) if headers else None
        try:
            if pool:
                head = ctypes.create_string_buffer(HDR_SIZE)  # a pjsip_hdr: the list head
                address = ctypes.addressof(head)
                ctypes.memmove(address, struct.pack("<QQ", address, address), 16)  # pj_list_init
                self._append_headers(pool, address, headers)
            status = self._lib.pjsip_endpt_respond_stateless(
                self._endpt, rdata, code, None, head, None
            )
            if status != 0:
                log.warning("responding %d failed: %s", code, error_text(status))
        finally:
            if pool:
                self._lib.pj_pool_release(pool)

    def set_body(self, tdata: int, content_type: str, body: bytes) -> None:
        main, slash, sub = content_type.partition("/")
        if not slash or not main or not sub:
            raise SendError(f"bad content type {content_type!r}")
        offset = self.offsets.tx_msg
        assert offset is not None
        pool = self.memory.pointer(tdata + TDATA_POOL_OFFSET)
        msg = self.memory.pointer(tdata + offset)
        keep: list[Any] = []
        created = self._lib.pjsip_msg_body_create(
            pool,
            byref(make_pj_str(main.strip().encode(), keep)),
            byref(make_pj_str(sub.strip().encode(), keep)),
            byref(make_pj_str(body, keep)),
        )
        if not created:
            raise SendError("pjsip_msg_body_create failed")
        ctypes.c_void_p.from_address(msg + MSG_BODY_OFFSET).value = created

    def event_message(self, event: int) -> SipMessage | None:
        """The message a `pjsip_event` of a transaction carries in, if one came in."""
        if not event:
            return None  # pjsip passes NULL events, e.g. on pjsip_inv_terminate
        event_type, source, source_type = pjproject.read_tsx_event(event)
        if (
            event_type != pjproject.EVENT_TSX_STATE
            or source_type != pjproject.EVENT_RX_MSG
            or not source
        ):
            return None
        return SipMessage.parse(self._rdata_text(source))

    def _on_send_done(self, token: int, event: int) -> None:
        callback = self._pending.pop(int(token or 0), None)
        if callback is None:
            return
        response = None
        try:
            response = self.event_message(event)
        except MessageError as exc:
            log.warning("unreadable response: %s", exc)
        callback(response)

    def close(self) -> None:
        """Unregister the module (before `libDestroy`)."""
        self.oversize.close()
        status = self._lib.pjsip_endpt_unregister_module(self._endpt, byref(self._module))
        if status != 0:
            log.warning("unregistering the request hook: %s", error_text(status))
        self.memory.close()


def _buffer(data: bytes, keep: list[Any]) -> Any:
    buffer = ctypes.create_string_buffer(data)
    keep.append(buffer)
    return buffer
