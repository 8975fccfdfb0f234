"""Run pjsua's poll when pjsip has work, and sleep otherwise.

pjsua runs in poll mode on the event loop (`phone.sip.endpoint`). Polling it
on a timer cost 2-4 % of a core on an idle phone, because every asyncio
wake-up costs ~190 µs of CPU on these machines. Instead the loop watches what
pjsip's own poll would wait for:

* **Sockets.** pjsip's SIP ioqueue (the select backend, as the wheel and the
  image build it) keeps the descriptors it waits on in three `pj_fd_set_t`s:
  read, write and exception. Each socket of the read set is a loop reader, and
  each of the write and exception sets (a TCP connect in progress, a send that
  would have blocked) a loop writer; when one is ready, pjsua is polled. That
  covers every transport pjsip owns: the UDP socket, the TCP or TLS listener,
  each accepted or opened connection, the DNS resolver's socket.
* **Timers.** pjsip's timer heap (retransmissions, registration and
  subscription refreshes, transaction timeouts) tells its earliest due time;
  one loop timer fires then.

The sets change when pjsip opens or closes a socket or starts or stops
writing, and the timer heap when something is scheduled. Both happen inside a
poll or inside a send that Python started (a call, a SUBSCRIBE, a REGISTER):
the watch is brought up to date after each poll and, through the request
hook's transmit observer, after each message sent outside one. A descriptor
number that pjsip closed and reused within one poll is a new socket: the
inode of each watched descriptor is checked, and a changed one re-registered.

pjsua2 queues the callbacks that pjmedia's threads raise during a call (DTMF,
media events) until the next poll; while a call exists the poll also runs
every `CALL_JOBS_S`. Whether one exists is also told to `on_calls` after
each poll and send (the RTP thread runs only then, `phone.sip.media_poll`).

The offset of the read set inside `pj_ioqueue_t` depends on the build. It is
derived at start-up: the set whose count matches its bits, whose descriptors
are all open sockets, one of them our listening socket, followed by two sets
of the same shape. Anything else fails loudly (`LayoutError`).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable, Iterator

from phone import pjproject
from phone.pjproject import (
    FD_SET_BITS_OFFSET,
    FD_SET_BITS_SIZE,
    FD_SET_SIZE,
    PJ_SUCCESS,
    LayoutError,
    Memory,
    PjTimeVal,
)

log = logging.getLogger(__name__)

CALL_JOBS_S = 0.1  # during a call, run pjsua2's queued media-thread callbacks this often
TIMER_LATE_S = 0.001  # pjsip's clock counts milliseconds: never wake before a timer is due
IOQUEUE_SCAN_BYTES = 4096  # where the fd sets are looked for, from the ioqueue's start
FD_SETS = 3  # read, write, exception


def fds_of(bits: bytes) -> list[int]:
    """The descriptors in a native fd_set (bit n of the little-endian bitmap is fd n)."""
    value = int.from_bytes(bits, "little")
    fds = []
    while value:
        low = value & -value
        fds.append(low.bit_length() - 1)
        value ^= low
    return fds


def fd_set_at(data: bytes, offset: int) -> list[int] | None:
    """The descriptors of the `pj_fd_set_t` at `offset`, or None if its count
    does not match its bits (so it is not one)."""
    if offset + FD_SET_SIZE > len(data):
        return None
    (count,) = struct.unpack_from("<Q", data, offset)
    start = offset + FD_SET_BITS_OFFSET
    fds = fds_of(data[start : start + FD_SET_BITS_SIZE])
    return fds if len(fds) == count else None


def is_socket(fd: int) -> bool:
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False


def local_port(fd: int) -> int:
    """The local port of socket `fd` (0 if it has none), without taking the descriptor over."""
    sock = socket.socket(fileno=fd)
    try:
        name = sock.getsockname()
        return int(name[1]) if isinstance(name, tuple) else 0
    except OSError:
        return 0
    finally:
        sock.detach()


def find_fd_sets(data: bytes, listening_port: int) -> int:
    """The offset of the read set in the ioqueue bytes `data` (see the module doc)."""
    for offset in range(0, len(data) - FD_SETS * FD_SET_SIZE, 8):
        readers = fd_set_at(data, offset)
        if not readers or not all(is_socket(fd) for fd in readers):
            continue
        if listening_port not in {local_port(fd) for fd in readers}:
            continue
        others = [fd_set_at(data, offset + k * FD_SET_SIZE) for k in range(1, FD_SETS)]
        if all(fds is not None and all(is_socket(fd) for fd in fds) for fds in others):
            return offset
    raise LayoutError(
        f"pjsip's ioqueue holds no read set with our listening socket (port {listening_port})"
    )


def inode(fd: int) -> int:
    try:
        return os.fstat(fd).st_ino
    except OSError:
        return -1


class FdWatch:
    """Loop readers (or writers) kept equal to a list of descriptors; a number
    that now names another socket (closed and reused) is registered anew, as
    the loop's epoll forgot the closed one."""

    def __init__(
        self,
        add: Callable[..., object],
        remove: Callable[[int], object],
        ready: Callable[[], None],
    ) -> None:
        self._add = add
        self._remove = remove
        self._ready = ready
        self.inodes: dict[int, int] = {}  # fd -> inode of the socket watched

    def update(self, fds: list[int]) -> None:
        current = {fd: inode(fd) for fd in fds}
        for fd, node in list(self.inodes.items()):
            if current.get(fd) != node:
                self._remove(fd)
                del self.inodes[fd]
        for fd, node in current.items():
            if fd not in self.inodes and node >= 0:
                self._add(fd, self._ready)
                self.inodes[fd] = node

    def close(self) -> None:
        for fd in self.inodes:
            self._remove(fd)
        self.inodes.clear()


class SipWakeups:
    """Polls pjsua (`poll`) when a SIP socket is ready or pjsip's next timer is due,
    and tells `on_calls` whether pjsua has a call after each look."""

    def __init__(
        self,
        poll: Callable[[], None],
        listening_port: int,
        loop: asyncio.AbstractEventLoop,
        on_calls: Callable[[bool], None],
    ) -> None:
        self._poll_pjsua = poll
        self._on_calls = on_calls
        self._loop = loop
        self._loop_thread = threading.get_ident()
        lib = pjproject.library()
        self._lib = lib
        backend = lib.pj_ioqueue_name()
        if backend != b"select":
            raise LayoutError(f"pjlib's ioqueue is {backend!r}; the phone reads the select one")
        endpt = lib.pjsua_get_pjsip_endpt()
        self._ioqueue: int = lib.pjsip_endpt_get_ioqueue(endpt)
        self._timer_heap: int = lib.pjsip_endpt_get_timer_heap(endpt)
        memory = Memory()
        try:
            data = memory.read(self._ioqueue, IOQUEUE_SCAN_BYTES)
        finally:
            memory.close()
        self._sets_address = self._ioqueue + find_fd_sets(data, listening_port)
        self._readers = FdWatch(loop.add_reader, loop.remove_reader, self.poll)
        self._writers = FdWatch(loop.add_writer, loop.remove_writer, self.poll)
        self._timer: asyncio.TimerHandle | None = None
        self._sync_pending = False
        self._closed = False
        self.sync()

    # -- what pjsip waits for ----------------------------------------------
    def _fd_sets(self) -> tuple[list[int], list[int]]:
        data = ctypes.string_at(self._sets_address, FD_SETS * FD_SET_SIZE)
        read, write, exception = (fd_set_at(data, k * FD_SET_SIZE) or [] for k in range(FD_SETS))
        return read, sorted(set(write) | set(exception))

    def _timer_left(self) -> float | None:
        """Seconds until pjsip's earliest timer (negative once past due), or None."""
        lib = self._lib
        if lib.pj_timer_heap_count(self._timer_heap) == 0:  # earliest_time asserts on an empty heap
            return None
        earliest, now = PjTimeVal(), PjTimeVal()
        if lib.pj_timer_heap_earliest_time(self._timer_heap, ctypes.byref(earliest)) != PJ_SUCCESS:
            return None
        lib.pj_gettickcount(ctypes.byref(now))
        return (earliest.sec - now.sec) + (earliest.msec - now.msec) / 1000

    def _next_due(self, calls: bool) -> float | None:
        """Loop time of pjsip's earliest timer (or the next pending-job poll in a call)."""
        left = self._timer_left()
        due = None if left is None else self._loop.time() + max(0.0, left) + TIMER_LATE_S
        if calls:
            jobs = self._loop.time() + CALL_JOBS_S
            due = jobs if due is None else min(due, jobs)
        return due

    def overdue(self) -> float:
        """Seconds pjsip's earliest timer is past due: more than a moment only
        when the loop has stopped polling pjsip (the watchdog's check)."""
        left = self._timer_left()
        return 0.0 if left is None else max(0.0, -left)

    # -- keeping the loop's watch equal to it -------------------------------
    def sync(self) -> None:
        """Make the loop's readers, writers and timer match what pjsip waits for."""
        self._sync_pending = False
        if self._closed:
            return
        readers, writers = self._fd_sets()
        self._readers.update(readers)
        self._writers.update(writers)
        calls = self._lib.pjsua_call_get_count() > 0
        self._on_calls(calls)
        due = self._next_due(calls)
        if self._timer is not None and (due is None or abs(self._timer.when() - due) > 0.0005):
            self._timer.cancel()
            self._timer = None
        if due is not None and self._timer is None:
            self._timer = self._loop.call_at(due, self._timer_due)

    def _timer_due(self) -> None:
        self._timer = None
        self.poll()

    def poll(self) -> None:
        """Let pjsua handle what is ready, then watch what it waits for next."""
        self._poll_pjsua()
        self.sync()

    def sent(self) -> None:
        """pjsip sent a message: a new connection or timer may be waiting (any thread)."""
        if self._sync_pending or self._closed:
            return
        self._sync_pending = True
        if threading.get_ident() == self._loop_thread:
            self._loop.call_soon(self.sync)
        else:
            self._loop.call_soon_threadsafe(self.sync)

    def watched(self) -> Iterator[int]:
        """The descriptors the loop watches for pjsip now."""
        yield from sorted(set(self._readers.inodes) | set(self._writers.inodes))

    def close(self) -> None:
        """Stop watching (before `libDestroy`: the fd sets live in pjsip's memory)."""
        self._closed = True
        self._readers.close()
        self._writers.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
