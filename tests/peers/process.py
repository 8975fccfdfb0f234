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
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40

# Every peer started in this process, for the logs of a failing test.
_started: weakref.WeakSet[PeerProcess] = weakref.WeakSet()


class PeerError(RuntimeError):
    """A peer could not start, or did not stop cleanly; the message carries its log tail."""


class PeerProcess:
    """One peer daemon; subclasses say how to run it and when it is ready."""

    error: ClassVar[type[PeerError]] = PeerError
    # The signals a stop sends in turn, each followed by a wait (None: the stop's timeout).
    stop_signals: ClassVar[tuple[tuple[signal.Signals, float | None], ...]] = (
        (signal.SIGTERM, None),
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.exit_status: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- start --------------------------------------------------------------

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
        self.exit_status = None
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

    # -- stop ---------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> int | None:
        """Send `stop_signals` to the process, SIGKILL its group after `timeout`; the
        exit status (negative: the signal that ended it), None when it was not started.

        Only the main process is signalled: it stops its own workers. Signalled
        at once, Kamailio's TCP main process sometimes ignored the SIGTERM and
        its main process waited for it until killed (exit status -9).
        """
        process = self._process
        if process is None:
            return None
        self._process = None
        for sig, wait in self.stop_signals:
            if process.poll() is not None:
                break
            process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout if wait is None else wait)
        if process.poll() is None:
            log.warning(
                "%s PID %d ignored SIGTERM for %.0f s, killing", self.name, process.pid, timeout
            )
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Workers share the main process's group; none may outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self._console_closed()
        self.exit_status = process.returncode
        log.info("%s PID %d stopped (exit status %s)", self.name, process.pid, self.exit_status)
        return self.exit_status

    def check_stopped(self) -> None:
        """Raise unless the last stop saw exit status 0 (all three peers exit 0 on
        SIGTERM): a crash, or a kill after the timeout, is a bug to look into."""
        if self.exit_status not in (None, 0):
            raise self.error(
                f"{self.name} exited with status {self.exit_status} ({self.log_since_start()})"
            )

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
