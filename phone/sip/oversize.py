"""SIP messages longer than pjsip's receive buffer, on stream transports.

pjsip reads each TCP/TLS connection into one buffer of PJSIP_MAX_PKT_LEN bytes
(4000 in the x86_64 pjsua2 wheel). A message that does not fit is dropped with
"Rx buffer overflow" (`PJSIP_ERXOVERFLOW`, `pjsip_tpmgr_receive_packet` in
sip_transport.c) before any module sees it, so it can be neither answered nor
refused with 513. Worse, pjsip discards only the buffer: the message's
remaining bytes arrive next and are read as the start of a new message, so the
next request on that connection is lost too.

What we can do from outside, with pjsip's exported API: its transport
manager reports every dropped packet to one callback
(`pjsip_tpmgr_set_drop_data_cb`). On an overflow we log once which message
was lost (its start line and Call-ID are in the buffer), tell the listeners
(a subscription whose NOTIFY was lost), and for TCP shut the connection down
(`shutdown(2)` on `pjsip_tcp_transport_get_socket`): pjsip then reads end of
file, destroys the transport and reports it disconnected, pjsua re-registers
over a new connection, and the sender's next request goes over a new
connection instead of being swallowed. A TLS transport has no exported
socket: it is left open, and said so. UDP is not affected: a datagram is
read into the buffer on its own, and one longer than it arrives cut short
(its body shorter than its Content-Length).
"""

from __future__ import annotations

import ctypes
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from phone.pjproject import DROP_CALLBACK
from phone.pjsua_callback import c_callback

log = logging.getLogger(__name__)

PJSIP_ERXOVERFLOW = 171062
OBJ_NAME_LEN = 32  # pjsip_transport starts with obj_name[PJ_MAX_OBJ_NAME]
HEAD_BYTES = 1024  # the start of the dropped message we read: start line, Call-ID
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Oversized:
    """A message pjsip dropped for being longer than its receive buffer."""

    transport: str  # pjsip's name of the connection, e.g. "tcpc0x5608..."
    start_line: str
    call_id: str | None
    closed: bool  # whether we shut the connection down


OversizeHandler = Callable[[Oversized], None]


class OversizeGuard:
    """Tells its handlers of each message pjsip dropped for its length.

    pjsip keeps one dropped-data callback per transport manager, and a second
    `pjsip_tpmgr_set_drop_data_cb` replaces the first: two request hooks on one
    endpoint (tests build more than one) would each take it from the other, and
    the first to close would leave none. So every guard on a manager shares one
    installed callback (`_DropWatch`), which reads, closes and logs each drop
    once and hands it to every guard; the last guard to close removes it.
    """

    def __init__(self, lib: Any, endpt: int) -> None:
        manager = lib.pjsip_endpt_get_tpmgr(endpt)
        self._watch = _WATCHES.get(manager) or _WATCHES.setdefault(
            manager, _DropWatch(lib, manager)
        )
        self._handlers: list[OversizeHandler] = []
        self._watch.add(self)

    def on_oversize(self, handler: OversizeHandler) -> None:
        self._handlers.append(handler)

    def remove_handler(self, handler: OversizeHandler) -> None:
        self._handlers.remove(handler)

    def close(self) -> None:
        self._watch.discard(self)

    def dropped(self, event: Oversized) -> None:
        for handler in self._handlers:
            handler(event)


class _DropWatch:
    """The dropped-data callback installed on one transport manager, for all its guards."""

    def __init__(self, lib: Any, manager: int) -> None:
        self._lib = lib
        self._manager = manager
        self._guards: list[OversizeGuard] = []
        self._callback = c_callback(DROP_CALLBACK, self._on_dropped)

    def add(self, guard: OversizeGuard) -> None:
        self._guards.append(guard)
        # Installed again each time: a manager of a destroyed endpoint may come
        # back at the same address, with nothing installed.
        self._lib.pjsip_tpmgr_set_drop_data_cb(self._manager, self._callback)

    def discard(self, guard: OversizeGuard) -> None:
        if guard in self._guards:
            self._guards.remove(guard)
        if not self._guards:
            self._lib.pjsip_tpmgr_set_drop_data_cb(self._manager, DROP_CALLBACK())  # NULL
            if _WATCHES.get(self._manager) is self:
                del _WATCHES[self._manager]

    def _on_dropped(self, dropped: Any) -> None:
        data = dropped.contents
        if data.status != PJSIP_ERXOVERFLOW or not data.tp or not data.data:
            return  # keep-alive newlines, garbage: pjsip's own business
        name = ctypes.string_at(data.tp, OBJ_NAME_LEN).split(b"\0", 1)[0].decode(errors="replace")
        head = ctypes.string_at(data.data, HEAD_BYTES)
        start_line = head.split(b"\r\n", 1)[0].decode(errors="replace")[:80]
        match = _CALL_ID.search(head)
        closed = name.startswith("tcp") and self._shut_down(data.tp)
        event = Oversized(
            name,
            start_line,
            None if match is None else match[1].decode(errors="replace"),
            closed,
        )
        log.warning(
            "SIP message longer than pjsip's receive buffer dropped on %s: %s (Call-ID %s); %s",
            name,
            start_line,
            event.call_id,
            "connection closed" if closed else "connection left open",
        )
        for guard in tuple(self._guards):
            guard.dropped(event)

    def _shut_down(self, transport: int) -> bool:
        fd = self._lib.pjsip_tcp_transport_get_socket(transport)
        if fd < 0:
            return False
        duplicate = socket.socket(fileno=socket.dup(fd))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            log.warning("closing the overflowed connection: %s", exc)
            return False
        finally:
            duplicate.close()
        return True


_WATCHES: dict[int, _DropWatch] = {}  # by pjsip_tpmgr*: pjsip's own per-manager slot
