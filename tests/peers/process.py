"""The life of a test peer's process: start, wait until ready, stop, and its log.

Kamailio, baresip and PulseAudio are real daemons that the tests start on
loopback. Each runs in a session of its own (so a stop reaches its workers
too), writes its console to a log file in its own directory, and is stopped
with SIGTERM (so it can unregister or flush its DBs), then SIGKILL after a
timeout. A peer that dies while starting, is not ready in time, or exits
uncleanly raises its `PeerError` with the tail of its log; a failing test is
shown what the peers it used logged meanwhile (`log_marks`, `logs_since`,
used by tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
# Starts on freshly chosen ports, when a chosen port was taken before the peer bound it.
START_ATTEMPTS = 3

# Every peer started in this process, for the logs of a failing test.
_started: weakref.WeakSet[PeerProcess] = weakref.WeakSet()


class PeerError(RuntimeError):
    """A peer could not start, or did not stop cleanly; the message carries its log tail."""


class PeerProcess(ABC):
    """One peer daemon; subclasses say how to run it and when it is ready."""

    error: ClassVar[type[PeerError]] = PeerError
    # The signals a stop sends in turn, each followed by a wait (None: the stop's timeout).
    stop_signals: ClassVar[tuple[tuple[signal.Signals, float | None], ...]] = (
        (signal.SIGTERM, None),
    )
    # False for a peer whose own shutdown is known to fail now and then: then
    # only a death before the stop counts against it.
    exits_cleanly: ClassVar[bool] = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.exit_status: int | None = None
        self._unclean_stop: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._log_offset = 0
        # Threads reading the peer's console or sockets, joined when it stops.
        self._readers: list[threading.Thread] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def start(self) -> object:
        """Start the peer and return once it is ready."""

    def close(self) -> None:
        """Stop, then remove the peer's files; raises if it did not stop cleanly."""
        try:
            self.stop()
            self.check_stopped()
        finally:
            self._remove_files()

    @abstractmethod
    def _remove_files(self) -> None:
        """Delete the peer's own directory (its config, DBs and log)."""

    # -- start --------------------------------------------------------------

    def _start_on_free_ports(
        self, launch: Callable[[], None], attempts: int = START_ATTEMPTS
    ) -> None:
        """Run `launch`, which chooses ports and starts the peer; again, up to
        `attempts` times, when another process took a port before the peer bound it."""
        for attempt in range(1, attempts + 1):
            try:
                launch()
                return
            except PeerError as error:
                self.stop()
                if attempt == attempts or "Address already in use" not in str(error):
                    raise
                log.warning("%s: a port was taken before it bound, retrying", self.name)

    def _spawn(
        self,
        args: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        console: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Run `args` in a new session, appending its output to `log_path`.

        With `console`, the output is a pipe instead, which the subclass reads
        (and copies to `log_path`) as it comes.
        """
        self._log = log_path
        self._log_offset = log_path.stat().st_size if log_path.exists() else 0
        self.exit_status = self._unclean_stop = None
        with log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if console else log_file,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        _started.add(self)
        return self._process

    def _wait_ready(self, ready: Callable[[], bool], timeout: float) -> float:
        """Poll `ready` until it holds; the seconds since the spawn. Raises, with
        the log tail, when the process exits first or `timeout` passes."""
        assert self._process is not None
        started = time.monotonic()
        while time.monotonic() < started + timeout:
            if self._process.poll() is not None:
                status = self._process.returncode
                self._process = None
                self._console_closed()
                raise self.error(
                    f"{self.name} exited with status {status} while starting"
                    f" ({self.log_since_start()})"
                )
            if ready():
                return time.monotonic() - started
            time.sleep(0.02)
        tail = self.log_since_start()
        self.stop()
        raise self.error(f"{self.name} not ready after {timeout:.0f} s ({tail})")

    def _console_closed(self) -> None:
        """Wait until the console's last words are in the log (with `console=True`)."""
        for reader in self._readers:
            reader.join(2.0)

    # -- stop ---------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> int | None:
        """Send `stop_signals` to the process, SIGKILL its group after `timeout`; the
        exit status (negative: the signal that ended it), None when it was not started.

        Only the main process is signalled: it stops its own workers. With the
        whole group signalled at once, Kamailio hung far more often (see
        `Kamailio.exits_cleanly`).
        """
        process = self._process
        if process is None:
            return None
        self._process = None
        exited_before = process.poll() is not None
        for sig, wait in self.stop_signals:
            if process.poll() is not None:
                break
            process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout if wait is None else wait)
        killed = process.poll() is None
        if killed:
            log.warning(
                "%s PID %d ignored SIGTERM for %.0f s, killing", self.name, process.pid, timeout
            )
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Workers share the main process's group; none may outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self._console_closed()
        self.exit_status = status = process.returncode
        log.info("%s PID %d stopped (exit status %s)", self.name, process.pid, status)
        problem = None
        if killed:
            problem = f"ignored SIGTERM for {timeout:.0f} s and was killed"
        elif status != 0:
            problem = f"exited with status {status} on SIGTERM"
        if exited_before:
            problem = f"exited by itself with status {status} before the stop"
        elif problem is not None and not self.exits_cleanly:
            log.warning("%s %s, a known fault of its shutdown", self.name, problem)
            problem = None
        self._unclean_stop = problem
        return status

    def check_stopped(self) -> None:
        """Raise if the last stop found the peer dead already (a crash), or it did not
        exit 0 on SIGTERM: a peer's crash is a bug to look into, not noise."""
        if self._unclean_stop is not None:
            raise self.error(f"{self.name} {self._unclean_stop} ({self.log_since_start()})")

    # -- the log ------------------------------------------------------------

    def log_size(self) -> int:
        if self._log is None:
            return 0
        with contextlib.suppress(OSError):
            return self._log.stat().st_size
        return 0

    def log_tail(self, offset: int = 0, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` written since `offset`, or why there are none."""
        if self._log is None:
            return "(not started, no log)"
        try:
            with self._log.open("rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError as error:
            return f"(no log: {error})"
        return "\n".join(text.splitlines()[-lines:])

    def log_since_start(self) -> str:
        """The tail of what this run logged, quoted for an exception message."""
        return f"log {self._log}, last lines:\n{self.log_tail(self._log_offset)}"


def log_marks() -> dict[PeerProcess, int]:
    """How long each started peer's log is now (taken before a test runs)."""
    return {peer: peer.log_size() for peer in list(_started)}


def logs_since(marks: Mapping[PeerProcess, int]) -> list[tuple[str, str]]:
    """(title, tail) of every peer that logged anything since `marks`."""
    sections = []
    for peer in list(_started):
        offset = marks.get(peer, 0)
        if peer.log_size() > offset:
            sections.append((f"{peer.name} log (last lines)", peer.log_tail(offset)))
    return sections
