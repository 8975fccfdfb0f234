"""Telling systemd how the phone is (sd_notify(3)), for a `Type=notify` unit.

The protocol is one datagram per message to the unix socket in
$NOTIFY_SOCKET (a name starting with '@' is in the abstract namespace),
carrying newline-separated `KEY=value` fields:

- `READY=1` once the SIP stack runs and the control interface is open, so
  units ordered after the phone start when it can take calls;
- `STATUS=...` when what an operator wants to see changes (registered, the
  registration failing), shown by `systemctl status`;
- `WATCHDOG=1` every WATCHDOG_USEC/2, sent from the event loop and only while
  the loop is healthy: its own timer fires on time and pjsua's poller has run
  since the last ping. A loop that stalls (or a poller that died) stops the
  pings, and systemd kills and restarts the phone (`WatchdogSec=`);
- `STOPPING=1` when a clean stop begins.

Without $NOTIFY_SOCKET (not under systemd) nothing is sent. A failing send is
logged once: the phone runs on without its supervisor's attention.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """The phone's side of sd_notify; every method does nothing without a socket."""

    def __init__(self, address: str | None, watchdog_s: float | None = None) -> None:
        self.address = address
        self.watchdog_s = watchdog_s  # WATCHDOG_USEC as seconds; None: no watchdog
        self._socket: socket.socket | None = None
        self._status: str | None = None
        self._send_failed = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Read NOTIFY_SOCKET, and WATCHDOG_USEC when WATCHDOG_PID (if set) is us."""
        env = os.environ if env is None else env
        watchdog_s = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID")
        if usec.isdigit() and int(usec) > 0 and (pid is None or pid == str(os.getpid())):
            watchdog_s = int(usec) / 1_000_000
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog_s)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> None:
        if self.address is None:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto("\n".join(fields).encode(), target)
        except OSError as exc:
            if not self._send_failed:
                log.error("systemd notification to %s failed: %s", self.address, exc)
                self._send_failed = True

    def ready(self, status: str) -> None:
        self._status = status
        self.send("READY=1", f"STATUS={status}")

    def status(self, text: str) -> None:
        """Send STATUS= when it differs from the last one sent."""
        if text != self._status:
            self._status = text
            self.send(f"STATUS={text}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=Stopping")

    async def keep_alive(self, stalled: Callable[[], str | None]) -> None:
        """Ping the watchdog every WATCHDOG_USEC/2 while the loop is healthy.

        A tick later than half its interval means the loop is not keeping up;
        `stalled` says what else keeps the phone from its work (pjsip's timers
        overdue: the loop no longer polls it), or None. Either way that tick
        sends nothing. Returns at once without a watchdog.
        """
        if self.address is None or self.watchdog_s is None:
            return
        interval = self.watchdog_s / 2
        unhealthy: str | None = None
        while True:
            due = time.monotonic() + interval
            await asyncio.sleep(interval)
            late = time.monotonic() - due
            if late > interval / 2:
                problem: str | None = f"the event loop ran {late * 1000:.0f} ms late"
            else:
                problem = stalled()
            if problem is None:
                if unhealthy is not None:
                    log.info("watchdog pings resume")
                unhealthy = None
                self.send("WATCHDOG=1")
            elif unhealthy is None:
                log.error("watchdog not pinged: %s", problem)
                unhealthy = problem

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
