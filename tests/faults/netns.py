"""A network namespace of its own for a phone, joined to the host by a veth pair.

The phone runs inside the namespace (`wrapper`), the servers on the host end
of the pair. `down()` takes the phone's end of the link down, as pulling the
phone's cable does: its routes go, and what it sends fails at once
(ENETUNREACH); what the host sends towards it is lost. `up()` plugs it back.
Needs root and iproute2; names and the /30 subnet are chosen per instance, so
test runs on one machine do not collide.
"""

from __future__ import annotations

import ipaddress
import os
import random
import secrets
import shutil
import subprocess
import time


class NetnsUnavailable(RuntimeError):
    """Not root, or no iproute2: the test cannot make a namespace here."""


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 in 10.0.0.0/8 that overlaps no address of the host."""
    used = [
        ipaddress.ip_interface(line.split()[3]).network
        for line in _ip("-4", "-o", "addr", "show").splitlines()
    ]
    while True:
        candidate = ipaddress.ip_network(
            f"10.{random.randint(100, 254)}.{random.randint(0, 255)}.{4 * random.randint(0, 63)}/30"
        )
        if not any(candidate.overlaps(net) for net in used):
            return candidate


class NetnsLink:
    """A namespace with one veth link to the host: `host_ip` here, `phone_ip` there."""

    def __init__(self) -> None:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise NetnsUnavailable("a network namespace needs root and iproute2 (`ip`)")
        tag = secrets.token_hex(3)
        self.namespace = f"simplephone-{tag}"
        self.host_if = f"sph{tag}"
        self.phone_if = f"spp{tag}"
        host, phone = list(_free_subnet().hosts())
        self.host_ip, self.phone_ip = str(host), str(phone)
        self._created = False

    @property
    def wrapper(self) -> tuple[str, ...]:
        """The command prefix that runs a program inside the namespace."""
        return ("ip", "netns", "exec", self.namespace)

    def create(self) -> NetnsLink:
        _ip("netns", "add", self.namespace)
        self._created = True
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.phone_if)
        _ip("link", "set", self.phone_if, "netns", self.namespace)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip(*self._in_ns, "addr", "add", f"{self.phone_ip}/30", "dev", self.phone_if)
        _ip(*self._in_ns, "link", "set", "lo", "up")
        _ip("link", "set", self.host_if, "up")
        self.up()
        return self

    def down(self) -> None:
        _ip("-n", self.namespace, "link", "set", self.phone_if, "down")

    def up(self, timeout: float = 5.0) -> None:
        """Bring the phone's end up and wait until both ends have carrier."""
        _ip("-n", self.namespace, "link", "set", self.phone_if, "up")
        deadline = time.monotonic() + timeout
        while not (self._carrier(self.host_if, ()) and self._carrier(self.phone_if, self._in_ns)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"veth {self.host_if}/{self.phone_if} has no carrier")
            time.sleep(0.02)

    @property
    def _in_ns(self) -> tuple[str, ...]:
        return ("-n", self.namespace)

    @staticmethod
    def _carrier(interface: str, where: tuple[str, ...]) -> bool:
        return "LOWER_UP" in _ip(*where, "-o", "link", "show", interface)

    def close(self) -> None:
        """Delete the namespace (the veth pair goes with it)."""
        if self._created:
            subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, timeout=10)
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10)
            self._created = False
