"""The phone polls pjsua only when a SIP socket is ready or pjsip's next timer is
due (`phone.sip.wakeups`): nothing else wakes it. Each test lets the phone go
idle first, then checks that what arrives on a socket pjsip owns, or what one
of its timers must send, still happens: requests over UDP and TCP, TCP
connections accepted and opened, transaction retransmissions, registration
and subscription refreshes."""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import Iterator

import pytest

from phone.pjproject import FD_SET_BITS_OFFSET, FD_SET_SIZE, LayoutError
from phone.sip.message import SipMessage
from phone.sip.wakeups import FdWatch, fd_set_at, fds_of, find_fd_sets
from tests.peers.ports import free_port
from tests.phones import PhoneFactory, phones
from tests.sip.udp_peer import UdpSipPeer

__all__ = ["phones"]

IDLE_S = 1.5  # long enough for any leftover activity of the start to end
REG_EXPIRES = 10  # the shortest the config takes; pjsua refreshes 5 s before it ends


# ---------------------------------------------------------------- the fd-set layout


def fd_set_bytes(fds: list[int]) -> bytes:
    bits = sum(1 << fd for fd in fds).to_bytes(FD_SET_SIZE - FD_SET_BITS_OFFSET, "little")
    return len(fds).to_bytes(8, "little") + bits


def test_fd_set_bits_name_the_descriptors() -> None:
    assert fds_of(bytes([0b1010_0001, 0, 0b1])) == [0, 5, 7, 16]
    assert fd_set_at(fd_set_bytes([3, 64, 1023]), 0) == [3, 64, 1023]
    assert fd_set_at(b"\x02" + fd_set_bytes([3])[1:], 0) is None  # count 2, one bit


def test_read_set_is_found_after_the_fields_before_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        before = (7).to_bytes(8, "little") + bytes(88)  # a small field, then no set
        ioqueue = before + fd_set_bytes([sock.fileno()]) + fd_set_bytes([]) * 2
        assert find_fd_sets(ioqueue + bytes(64), port) == len(before)
        with pytest.raises(LayoutError, match="listening socket"):
            find_fd_sets(ioqueue + bytes(64), port + 1 if port < 65535 else port - 1)


def test_a_reused_descriptor_number_is_watched_anew() -> None:
    """pjsip may close a socket and open another with the same number in one
    poll; the loop's epoll dropped the closed one, so it must register again."""
    calls: list[tuple[str, int]] = []
    watch = FdWatch(
        lambda fd, _ready: calls.append(("add", fd)),
        lambda fd: calls.append(("remove", fd)),
        lambda: None,
    )
    first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = first.fileno()
    watch.update([fd])
    watch.update([fd])  # unchanged: nothing to do
    first.close()
    second = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert second.fileno() == fd  # the lowest free number, as the kernel gives them
        watch.update([fd])
        watch.update([])
    finally:
        second.close()
    assert calls == [("add", fd), ("remove", fd), ("add", fd), ("remove", fd)]


# ---------------------------------------------------------------- a raw SIP server


class TcpSipPeer:
    """A raw SIP server on loopback TCP: reads whole messages, answers on the
    connection they came on; counts the connections it accepted."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=0)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._buffers: dict[socket.socket, bytes] = {}
        self._fillers: list[socket.socket] = []

    def fill_accept_queue(self) -> None:
        """Connect without being accepted until the kernel drops new SYNs: a
        client's connect then stays in progress until `receive` accepts these
        and the client's SYN is retransmitted (after 1 s)."""
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(filler)

    def receive(self, timeout: float = 5.0) -> tuple[SipMessage, socket.socket]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for conn in self.conns:
                message = self._take(conn)
                if message is not None:
                    return message, conn
            try:
                conn, _ = self.listener.accept()
                conn.settimeout(0.05)
                self.conns.append(conn)
                self._buffers[conn] = b""
            except TimeoutError:
                pass
        raise TimeoutError("no SIP message over TCP")

    def _take(self, conn: socket.socket) -> SipMessage | None:
        with contextlib.suppress(TimeoutError):
            self._buffers[conn] += conn.recv(65536)
        data = self._buffers[conn]
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return None
        length = SipMessage.parse(head + sep).header("content-length") or "0"
        if len(rest) < int(length):
            return None
        self._buffers[conn] = rest[int(length) :]
        return SipMessage.parse(head + sep + rest[: int(length)])

    def close(self) -> None:
        for conn in self.conns + self._fillers:
            conn.close()
        self.listener.close()


def ok(request: SipMessage, expires: int | None = None) -> bytes:
    """200 to `request`; for REGISTER, SUBSCRIBE and PUBLISH with the grant. A
    REGISTER without Contact (the phone's binding query, RFC 3261 10.2.3) gets
    the phone's own Contact back from its From: the binding it made."""
    headers: list[tuple[str, str]] = []
    if expires is not None:
        headers.append(("Expires", str(expires)))
        if request.method == "REGISTER":
            who = request.require("from").split(";")[0]
            contact = request.header("contact") or _bindings[who]
            _bindings[who] = contact
            headers.append(("Contact", f"{contact};expires={expires}"))
        if request.method == "SUBSCRIBE":
            headers.append(("Contact", "<sip:server@127.0.0.1>"))
        if request.method == "PUBLISH":
            headers.append(("SIP-ETag", secrets.token_hex(4)))
    return UdpSipPeer.response(request, 200, "OK", to_tag="srv", headers=tuple(headers))


_bindings: dict[str, str] = {}  # From (name-addr) -> the Contact it registered


def binds(message: SipMessage) -> bool:
    """A REGISTER that makes or refreshes a binding, not a query of them."""
    return message.method == "REGISTER" and message.header("contact") is not None


def options(target: str, via: str) -> bytes:
    return (
        f"OPTIONS {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/{via};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
        f"From: <sip:tester@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
        f"To: <{target}>\r\n"
        f"Call-ID: {secrets.token_hex(8)}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def registered(state: dict[str, object]) -> bool:
    return bool(state["registered"])


@pytest.fixture
def udp_server() -> Iterator[UdpSipPeer]:
    peer = UdpSipPeer("server")
    yield peer
    peer.close()


@pytest.fixture
def tcp_server() -> Iterator[TcpSipPeer]:
    peer = TcpSipPeer()
    yield peer
    peer.close()


def nothing(*_: object) -> None:
    """The phone is another process: nothing to pump while the peer waits."""


# ---------------------------------------------------------------- the tests


def test_idle_phone_answers_requests_over_udp(phones: PhoneFactory, udp_server: UdpSipPeer) -> None:
    port = free_port()
    phone, uri = phones.direct("alice", port=port)
    for _ in range(2):
        time.sleep(IDLE_S)
        udp_server.send(options(uri, f"UDP 127.0.0.1:{udp_server.port}"), ("127.0.0.1", port))
        answer = udp_server.receive(nothing, match=lambda m: m.cseq[1] == "OPTIONS")
        assert answer.status == 200
    assert phone.stop() == 0


def test_idle_phone_accepts_new_tcp_connections(phones: PhoneFactory) -> None:
    """Each connection is a new socket in pjsip's read set."""
    port = free_port()
    uri = f"sip:alice@127.0.0.1:{port};transport=tcp"
    phone = phones.start("alice", {"uri": uri, "transport": "tcp"}, [])
    for _ in range(3):
        time.sleep(IDLE_S)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(options(uri, "TCP 127.0.0.1:9"))
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                assert chunk, f"connection closed after {data!r}"
                data += chunk
        assert data.startswith(b"SIP/2.0 200 ")
    assert phone.stop() == 0


def test_retransmission_and_refreshes_over_udp(
    phones: PhoneFactory, udp_server: UdpSipPeer
) -> None:
    """The server ignores the first REGISTER: only timer A's retransmission can
    register the phone. Then the registration and the presence subscription are
    granted for 10 s, and their refreshes must come on their own."""
    server = f"sip:127.0.0.1:{udp_server.port}"
    phone = phones.start(
        "alice",
        {
            "uri": f"sip:alice@127.0.0.1:{udp_server.port}",
            "registrar": server,
            "password": "unused",  # the server does not challenge
            "reg_expires": REG_EXPIRES,
        },
        [("Bob", f"sip:bob@127.0.0.1:{udp_server.port}")],
    )
    first = udp_server.receive(nothing, match=binds)
    again = udp_server.receive(nothing, match=binds)
    assert again.header("via") == first.header("via")  # the same transaction, resent
    reply = udp_server.last_from
    assert reply is not None
    udp_server.send(ok(again, REG_EXPIRES), reply)
    phone.wait_for(registered)
    seen = _serve(udp_server, reply, seconds=REG_EXPIRES + 2)
    assert seen["REGISTER"] >= 1, seen  # the refresh, from pjsip's timer heap
    assert seen["SUBSCRIBE refresh"] >= 1, seen
    assert phone.stop() == 0


def test_registers_over_a_connection_it_opens_when_idle(
    phones: PhoneFactory, tcp_server: TcpSipPeer
) -> None:
    """Over TCP the phone opens the connection itself. The server's accept queue
    is full at first, so the connect is still in progress when pjsip returns
    (the socket is in its write set) and only completes a second later; then
    the REGISTER goes out over it, and its refresh later, the phone otherwise idle."""
    tcp_server.fill_accept_queue()
    server = f"sip:127.0.0.1:{tcp_server.port};transport=tcp"
    phone = phones.start(
        "alice",
        {
            "uri": f"sip:alice@127.0.0.1:{tcp_server.port}",
            "registrar": server,
            "password": "unused",
            "transport": "tcp",
            "reg_expires": REG_EXPIRES,
        },
        [],
    )
    time.sleep(IDLE_S)
    deadline = time.monotonic() + REG_EXPIRES + 5
    registers = 0
    while registers < 2 and time.monotonic() < deadline:
        message, conn = tcp_server.receive(timeout=deadline - time.monotonic())
        if message.is_request:
            registers += binds(message)
            conn.sendall(ok(message, REG_EXPIRES))
        if registers == 1:
            phone.wait_for(registered)
    assert registers == 2  # the first and its refresh
    assert phone.stop() == 0


def _serve(peer: UdpSipPeer, reply: tuple[str, int], seconds: float) -> dict[str, int]:
    """Grant every request for REG_EXPIRES seconds; count what came, by kind."""
    seen = {"REGISTER": 0, "SUBSCRIBE": 0, "SUBSCRIBE refresh": 0}
    dialogs: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            message = peer.receive(nothing, timeout=deadline - time.monotonic())
        except TimeoutError:
            break
        if not message.is_request:
            continue
        method = message.method or ""
        if method == "SUBSCRIBE" and message.call_id in dialogs:
            seen["SUBSCRIBE refresh"] += 1
        if method == "REGISTER" and not binds(message):
            method = "REGISTER query"
        dialogs.add(message.call_id)
        seen[method] = seen.get(method, 0) + 1
        peer.send(ok(message, REG_EXPIRES), reply)
    return seen
