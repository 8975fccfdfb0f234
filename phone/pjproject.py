"""pjproject's C API, as the pjsua2 wheel exports it, through ctypes.

pjsua2 wraps pjsua, but the phone also needs parts of pjlib, pjsip and
pjmedia that it hides (a request hook, invite sessions, the echo canceller).
They are exported by the `_pjsua2` shared object. This module is the one place
that binds them. It opens one library handle for the process, declares each
function once with its C prototype (checked against the 2.15.1 headers), and
defines the structures, fixed offsets and callback types that the C side
shares with us. Offsets that depend on the build are not here: they are
derived at start-up (`phone.sip.layout`).

It lives beside `phone.sip` and `phone.audio` so both can use it.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_long,
    c_size_t,
    c_ssize_t,
    c_uint,
)
from ctypes import c_void_p as VoidP
from typing import Any

PJ_SUCCESS = 0


class LibraryMissing(RuntimeError):
    """The pjsua2 shared object cannot be loaded in this process."""


class LayoutError(RuntimeError):
    """pjsip's memory is not laid out as checked; refuse to use it."""


# ---------------------------------------------------------------- structures


class PjStr(Structure):
    """`pj_str_t`: a pointer and a length, not NUL-terminated."""

    _fields_ = [("ptr", VoidP), ("slen", c_ssize_t)]


class PjTimeVal(Structure):
    """`pj_time_val`: seconds and milliseconds, as `pj_gettickcount` and the timer heap give them."""

    _fields_ = [("sec", c_long), ("msec", c_long)]


class PjsipMethod(Structure):
    """`pjsip_method` (pjsip/sip_msg.h)."""

    _fields_ = [("id", c_int), ("name", PjStr)]


ON_RX = CFUNCTYPE(c_int, VoidP)  # on_rx_request(rdata), on_rx_response(rdata)
ON_TX = CFUNCTYPE(c_int, VoidP)  # on_tx_request(tdata), on_tx_response(tdata)
ON_TSX = CFUNCTYPE(None, VoidP, VoidP)  # on_tsx_state(tsx, event)
SEND_CALLBACK = CFUNCTYPE(None, VoidP, VoidP)  # pjsip_endpt_send_callback(token, event)


class DroppedData(Structure):
    """`pjsip_tp_dropped_data` (sip_transport.h): tp, data, len, status."""

    _fields_ = [("tp", VoidP), ("data", VoidP), ("len", c_size_t), ("status", c_int)]


DROP_CALLBACK = CFUNCTYPE(None, POINTER(DroppedData))  # pjsip_tp_on_rx_dropped_cb


class PjsipModule(Structure):
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
        ("on_rx_request", ON_RX),
        ("on_rx_response", ON_RX),
        ("on_tx_request", ON_TX),
        ("on_tx_response", ON_TX),
        ("on_tsx_state", ON_TSX),
    ]


class EchoStat(Structure):
    """`pjmedia_echo_stat` (pjmedia/echo.h, 2.15.1)."""

    _fields_ = [
        ("name", c_char_p),
        ("delay", c_int),
        ("return_loss", ctypes.c_double),
        ("return_loss_enh", ctypes.c_double),
        ("std", c_int),
        ("frac_delay", ctypes.c_float),
        ("learning", c_uint),
        ("duration", c_uint),
        ("tail", c_uint),
        ("min_factor", c_int),
        ("avg_factor", c_int),
        ("stat_info", PjStr),
        ("buf_", ctypes.c_char * 128),
    ]


# Fixed offsets of public structures, the same since 2.0 (x86_64 and aarch64).
MSG_TYPE_REQUEST = 0  # pjsip_msg_type_e
MSG_HDR_OFFSET = 40  # pjsip_msg.hdr: type(4)+pad(4)+request line(32)
MSG_BODY_OFFSET = 104  # pjsip_msg.body: after hdr, a pjsip_hdr of 64 bytes
HDR_SIZE = 64  # pjsip_hdr: prev, next, type, name, sname, vptr
TDATA_POOL_OFFSET = 16  # pjsip_tx_data.pool after PJ_DECL_LIST_MEMBER
TDATA_NAME_OFFSET = 24  # pjsip_tx_data.obj_name after the pool
POOL_NAME_OFFSET = 16  # pj_pool_t.obj_name after PJ_DECL_LIST_MEMBER
PKT_INFO_TAIL = 88  # pjsip_rx_data.pkt_info from src_addr to its end, padded to msg_info
# pj_ioqueue_t of the select backend (pjlib/src/pj/ioqueue_select.c): after its
# active key list come rfdset, wfdset and xfdset, each a pj_fd_set_t of
# PJ_IOQUEUE_MAX_HANDLES (64, kept by the image's build) + 4 longs: a count of the
# descriptors in the set, then the native fd_set (FD_SETSIZE = 1024 bits). The
# offset of rfdset depends on the build; `phone.sip.wakeups` derives it.
FD_SET_SIZE = 8 * (64 + 4)
FD_SET_BITS_OFFSET = 8
FD_SET_BITS_SIZE = 1024 // 8
PKT_ZERO_SIZE = 4  # pjsip_rx_data.pkt_info.zero, right after packet[PJSIP_MAX_PKT_LEN]
PKT_LEN_SIZE = 8  # pjsip_rx_data.pkt_info.len (pj_ssize_t), 8-aligned, before src_addr
EVENT_RX_MSG = 3  # pjsip_event_id_e
EVENT_TSX_STATE = 5


def read_tsx_event(event: int) -> tuple[int, int, int]:
    """(event type, tsx_state.src, tsx_state.type) of a `pjsip_event` (sip_event.h)."""
    event_type = c_int.from_address(event + 16).value
    source = VoidP.from_address(event + 24).value or 0
    source_type = c_int.from_address(event + 44).value
    return event_type, source, source_type


# pjsip_inv_callback in 2.15.1 (pjsip-ua/sip_inv.h), in order, with each entry's type.
INV_CALLBACK_TYPES: dict[str, Any] = {
    "on_state_changed": CFUNCTYPE(None, VoidP, VoidP),
    "on_new_session": CFUNCTYPE(None, VoidP, VoidP),
    "on_tsx_state_changed": CFUNCTYPE(None, VoidP, VoidP, VoidP),
    "on_rx_offer": CFUNCTYPE(None, VoidP, VoidP),
    "on_rx_offer2": CFUNCTYPE(None, VoidP, VoidP),
    "on_rx_reinvite": CFUNCTYPE(c_int, VoidP, VoidP, VoidP),
    "on_create_offer": CFUNCTYPE(None, VoidP, POINTER(VoidP)),
    "on_media_update": CFUNCTYPE(None, VoidP, c_int),
    "on_send_ack": CFUNCTYPE(None, VoidP, VoidP),
    "on_redirected": CFUNCTYPE(c_int, VoidP, VoidP, VoidP),
}
INV_CALLBACKS = tuple(INV_CALLBACK_TYPES)
INV_STATE_NULL = 0  # pjsip_inv_state
INV_STATE_CONNECTING = 4
INV_STATE_CONFIRMED = 5
INV_STATE_DISCONNECTED = 6
REDIRECT_REJECT = 0  # pjsip_redirect_op


def rx_offer(param: int) -> int:
    """The offer (`pjmedia_sdp_session *`) of a `pjsip_inv_on_rx_offer_cb_param`,
    its first member since 2.0 (then `rdata`)."""
    return VoidP.from_address(param).value or 0


def inv_state(inv: int) -> int:
    """`inv->state`: after obj_name[PJ_MAX_OBJ_NAME=32] and three pool pointers (2.15.1);
    -1 if the session does not start with its "inv" name."""
    raw = ctypes.string_at(inv, 60)
    if not raw.startswith(b"inv"):
        return -1
    return int.from_bytes(raw[56:60], "little", signed=True)


INV_NEG_OFFSET = 136  # pjsip_inv_session.neg (2.15.1: after role and options, LP64)
SDP_ORIGIN_ID_OFFSET = 16  # pjmedia_sdp_session.origin.id, after user (a pj_str_t)
SDP_ORIGIN_VERSION_OFFSET = 24  # then version: both pj_uint_t, 64-bit where PJ_HAS_INT64


def active_local_sdp(inv: int) -> int:
    """The `pjmedia_sdp_session *` last negotiated on our side of `inv`
    (`pjmedia_sdp_neg_get_active_local(inv->neg)`), 0 if there is none."""
    neg = VoidP.from_address(inv + INV_NEG_OFFSET).value
    sdp = VoidP()
    if not neg or library().pjmedia_sdp_neg_get_active_local(neg, ctypes.byref(sdp)) != 0:
        return 0
    return sdp.value or 0


def sdp_origin(sdp: int) -> tuple[int, int]:
    """(session id, version) of a `pjmedia_sdp_session`'s o= line."""
    return ctypes.c_uint64.from_address(
        sdp + SDP_ORIGIN_ID_OFFSET
    ).value, ctypes.c_uint64.from_address(sdp + SDP_ORIGIN_VERSION_OFFSET).value


def set_sdp_version(sdp: int, version: int) -> None:
    ctypes.c_uint64.from_address(sdp + SDP_ORIGIN_VERSION_OFFSET).value = version


# ---------------------------------------------------------------- functions

_I16P = POINTER(ctypes.c_int16)
_OUT = POINTER(VoidP)  # an out-parameter: T **p
PROTOTYPES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    # pjlib
    "pj_pool_alloc": (VoidP, (VoidP, c_size_t)),
    "pj_pool_release": (None, (VoidP,)),
    "pj_list_insert_before": (None, (VoidP, VoidP)),
    "pj_strerror": (PjStr, (c_int, VoidP, c_size_t)),
    "pj_thread_is_registered": (c_int, ()),
    "pj_thread_register": (c_int, (c_char_p, VoidP, _OUT)),
    "pj_gettickcount": (c_int, (POINTER(PjTimeVal),)),
    "pj_timer_heap_count": (c_size_t, (VoidP,)),
    "pj_timer_heap_earliest_time": (c_int, (VoidP, POINTER(PjTimeVal))),
    "pj_ioqueue_name": (c_char_p, ()),
    "pj_ioqueue_poll": (c_int, (VoidP, POINTER(PjTimeVal))),
    # pjsua
    "pjsua_get_state": (c_int, ()),
    "pjsua_call_get_count": (c_uint, ()),
    "pjsua_get_pjsip_endpt": (VoidP, ()),
    "pjsua_get_pjmedia_endpt": (VoidP, ()),
    "pjsua_pool_create": (VoidP, (c_char_p, c_size_t, c_size_t)),
    "pjsua_acc_create_uac_contact": (c_int, (VoidP, VoidP, c_int, VoidP)),
    "pjsua_check_snd_dev_idle": (None, ()),  # pjsua_internal.h, exported
    "pjsua_snd_is_active": (c_int, ()),
    # pjsip core
    "pjsip_endpt_register_module": (c_int, (VoidP, VoidP)),
    "pjsip_endpt_unregister_module": (c_int, (VoidP, VoidP)),
    "pjsip_endpt_respond_stateless": (c_int, (VoidP, VoidP, c_int, VoidP, VoidP, VoidP)),
    "pjsip_endpt_create_request_from_hdr": (
        c_int,
        (VoidP, VoidP, VoidP, VoidP, VoidP, VoidP, VoidP, c_int, VoidP, _OUT),
    ),
    "pjsip_endpt_send_request": (c_int, (VoidP, VoidP, c_int, VoidP, SEND_CALLBACK)),
    "pjsip_msg_print": (c_ssize_t, (VoidP, VoidP, c_size_t)),
    "pjsip_msg_body_create": (VoidP, (VoidP, VoidP, VoidP, VoidP)),
    "pjsip_parse_uri": (VoidP, (VoidP, VoidP, c_size_t, c_int)),
    "pjsip_parse_hdr": (VoidP, (VoidP, VoidP, VoidP, c_size_t, VoidP)),
    "pjsip_method_init_np": (None, (VoidP, VoidP)),
    "pjsip_tx_data_dec_ref": (c_int, (VoidP,)),
    "pjsip_endpt_get_tpmgr": (VoidP, (VoidP,)),
    "pjsip_endpt_get_ioqueue": (VoidP, (VoidP,)),
    # pjmedia
    "pjmedia_endpt_get_ioqueue": (VoidP, (VoidP,)),
    "pjmedia_endpt_stop_threads": (c_int, (VoidP,)),
    "pjsip_endpt_get_timer_heap": (VoidP, (VoidP,)),
    "pjsip_tpmgr_set_drop_data_cb": (c_int, (VoidP, DROP_CALLBACK)),
    "pjsip_tcp_transport_get_socket": (ctypes.c_long, (VoidP,)),  # pj_sock_t
    # pjsip dialogs and invite sessions
    "pjsip_ua_instance": (VoidP, ()),
    "pjsip_ua_find_dialog": (VoidP, (VoidP, VoidP, VoidP, c_int)),
    "pjsip_dlg_create_uac": (c_int, (VoidP, VoidP, VoidP, VoidP, VoidP, _OUT)),
    "pjsip_dlg_create_uas_and_inc_lock": (c_int, (VoidP, VoidP, VoidP, _OUT)),
    "pjsip_dlg_dec_lock": (None, (VoidP,)),
    "pjsip_inv_usage_instance": (VoidP, ()),
    "pjsip_inv_create_uac": (c_int, (VoidP, VoidP, c_uint, _OUT)),
    "pjsip_inv_create_uas": (c_int, (VoidP, VoidP, VoidP, c_uint, _OUT)),
    "pjsip_inv_invite": (c_int, (VoidP, _OUT)),
    "pjsip_inv_initial_answer": (c_int, (VoidP, VoidP, c_int, VoidP, VoidP, _OUT)),
    "pjsip_inv_set_sdp_answer": (c_int, (VoidP, VoidP)),
    "pjsip_inv_send_msg": (c_int, (VoidP, VoidP)),
    "pjsip_inv_end_session": (c_int, (VoidP, c_int, VoidP, _OUT)),
    "pjsip_inv_terminate": (c_int, (VoidP, c_int, c_int)),
    "pjsip_inv_add_ref": (c_int, (VoidP,)),
    "pjsip_inv_dec_ref": (c_int, (VoidP,)),
    # pjmedia
    "pjmedia_sdp_parse": (c_int, (VoidP, VoidP, c_size_t, _OUT)),
    "pjmedia_sdp_neg_get_active_local": (c_int, (VoidP, _OUT)),
    "pjmedia_sdp_print": (c_int, (VoidP, VoidP, c_size_t)),
    "pjmedia_echo_create2": (c_int, (VoidP, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, _OUT)),
    "pjmedia_echo_cancel": (c_int, (VoidP, _I16P, _I16P, c_uint, VoidP)),
    "pjmedia_echo_reset": (c_int, (VoidP,)),
    "pjmedia_echo_get_stat": (c_int, (VoidP, POINTER(EchoStat))),
    "pjmedia_echo_stat_default": (None, (POINTER(EchoStat),)),
    "pjmedia_echo_destroy": (c_int, (VoidP,)),
}

_library: ctypes.CDLL | None = None
_library_lock = threading.Lock()


def library() -> ctypes.CDLL:
    """The pjsua2 shared object, every function of `PROTOTYPES` it exports declared.

    Callers use the C names (`lib.pjsip_inv_invite(...)`); `missing()` says
    which of the names they need this build lacks."""
    global _library
    with _library_lock:
        if _library is None:
            try:
                import pjsua2

                lib = ctypes.CDLL(pjsua2._pjsua2.__file__)
            except (ImportError, OSError, AttributeError) as exc:
                raise LibraryMissing(f"pjsua2 shared object not loadable: {exc}") from exc
            for name, (restype, argtypes) in PROTOTYPES.items():
                if hasattr(lib, name):
                    function = getattr(lib, name)
                    function.restype = restype
                    function.argtypes = list(argtypes)
            _library = lib
        return _library


def missing(*names: str) -> list[str]:
    """Those of `names` that the loaded library does not export."""
    lib = library()
    return [name for name in names if not hasattr(lib, name)]


def error_text(status: int) -> str:
    """A pj_status_t as "70012 (Not supported)", for logs and errors."""
    buf = ctypes.create_string_buffer(160)
    library().pj_strerror(status, buf, len(buf))
    return f"{status} ({buf.value.decode(errors='replace')})"


PJ_THREAD_DESC_SIZE = 64  # pj_thread_desc is long[PJ_THREAD_DESC_SIZE]
PR_SET_NAME = 15  # prctl's option number (linux/prctl.h)
_registered = threading.local()  # each registered thread's descriptor, which pjlib points into


def name_thread(name: str) -> None:
    """Give the calling thread `name` in /proc and `top -H` (prctl PR_SET_NAME,
    at most 15 bytes), as pjlib's own threads have theirs."""
    ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def register_thread(name: str) -> None:
    """Make the calling thread known to pjlib (which aborts when called from a
    thread it does not know); once per thread, a no-op after that.
    RuntimeError if pjlib refuses."""
    lib = library()
    if lib.pj_thread_is_registered():
        return
    desc = (ctypes.c_long * PJ_THREAD_DESC_SIZE)()
    handle = VoidP()
    status = lib.pj_thread_register(name.encode(), desc, ctypes.byref(handle))
    if status != PJ_SUCCESS:
        raise RuntimeError(f"pj_thread_register failed: {error_text(status)}")
    # pjlib keeps pointers into the descriptor for the thread's lifetime.
    _registered.desc = desc
    _registered.handle = handle


def close_sound_when_idle() -> None:
    """Have pjsua close its sound device (the null one too, whose clock thread
    ticks 50 times a second) `sndAutoCloseTime` after the bridge falls idle.

    pjsua opens a device the moment it is chosen, but starts that countdown
    only when a call or a bridge connection ends, so the device chosen at
    start ran until the first call. With the countdown started, it closes
    unless a connection is made first; the next connection
    (`pjsua_conf_connect`) opens it again. Call on the loop thread."""
    library().pjsua_check_snd_dev_idle()


def make_pj_str(text: bytes | str, keep: list[Any]) -> PjStr:
    """A `pj_str_t` over a copy of `text`; `keep` holds the copy alive."""
    if isinstance(text, str):
        text = text.encode()
    buffer = ctypes.create_string_buffer(text)
    keep.append(buffer)
    return PjStr(ctypes.cast(buffer, VoidP), len(text))


def code_ranges() -> list[tuple[int, int]]:
    """The executable mappings of the pjsua2 shared object in this process."""
    real = os.path.realpath(library()._name)
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == real and "x" in fields[1]:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


class Memory:
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
        return int(struct.unpack("<Q", data)[0]) if len(data) == 8 else 0

    def close(self) -> None:
        os.close(self._fd)
