"""Loopback ports the OS reports free, for the peers and phones the tests start.

A port is free only when it is chosen: its socket is closed before the peer
binds it, so another test run on the machine may take it in between. The
peers retry with new ports when a bind fails (see `Kamailio.start`).
"""

from __future__ import annotations

import socket
from contextlib import ExitStack
from typing import Literal

LISTEN_IP = "127.0.0.1"

# "udp+tcp": one number free for both, as a SIP listener binds it.
PortKind = Literal["udp", "tcp", "udp+tcp"]


def free_ports(*kinds: PortKind) -> tuple[int, ...]:
    """One distinct free port per kind, all held open together while chosen."""
    while True:
        with ExitStack() as held:

            def bound(kind: int, port: int) -> int:
                sock = held.enter_context(socket.socket(socket.AF_INET, kind))
                sock.bind((LISTEN_IP, port))
                return int(sock.getsockname()[1])

            try:
                return tuple(
                    bound(socket.SOCK_STREAM, bound(socket.SOCK_DGRAM, 0))
                    if kind == "udp+tcp"
                    else bound(socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM, 0)
                    for kind in kinds
                )
            except OSError:  # the UDP number is taken for TCP: choose again
                continue


def free_port(kind: PortKind = "udp+tcp") -> int:
    """One free port; by default free for UDP and TCP, so either transport may use it."""
    return free_ports(kind)[0]
