"""A phone in a child process, driven through its control interface.

pjsua allows one endpoint per process, so two phones talking to each other
(the demo, the end-to-end tests, the benchmarks) are two processes. This
starts `python -m phone run` on a virtual board with a Unix control socket
and hands back a `ControlClient` to it.

A phone must always stop cleanly: `stop()` raises `PhoneExitError` when the
child exits with anything but status 0 (an abort, a signal, an error), so no
caller can overlook a crash at shutdown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from phone.control import ControlClient


class PhoneExitError(RuntimeError):
    """A phone child process ended with a non-zero status or a signal."""


def describe_exit(code: int) -> str:
    """`status 1`, or the signal's name for a negative `Popen.returncode`."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


def stop_all(phones: Iterable[RemotePhone]) -> None:
    """Stop every phone, then raise the first `PhoneExitError` (if any)."""
    errors = []
    for phone in phones:
        try:
            phone.stop()
        except PhoneExitError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


class RemotePhone:
    def __init__(
        self,
        name: str,
        config_path: Path,
        workdir: Path,
        log_level: str = "INFO",
        run_args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.run_args = tuple(run_args)  # more `phone run` options, e.g. --sip-trace
        self.config_path = config_path
        self.socket = workdir / f"{name}.sock"
        self.log_path = workdir / f"{name}.log"
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self.client: ControlClient | None = None
        self._log: IO[bytes] | None = None
        self._exit_checked = False
        self.env: dict[str, str] = {}  # added to the child's environment
        self.wrapper: tuple[str, ...] = ()  # runs the child, e.g. ("ip", "netns", "exec", NS)

    def start(self, timeout: float = 15.0) -> RemotePhone:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the child
        # Its own session: a Ctrl-C meant for the parent (the demo) does not reach
        # the child, which the parent stops itself.
        self.process = subprocess.Popen(
            [
                *self.wrapper,
                sys.executable,
                "-m",
                "phone",
                "--log-level",
                self.log_level,
                *self.command(),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"phone {self.name} exited {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.socket.exists():
                with contextlib.suppress(OSError):
                    self.client = self.client or ControlClient(f"unix:{self.socket}")
                    if self.client.state()["started"]:
                        return self
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise TimeoutError(f"phone {self.name} did not start:\n{self.log_tail()}")
            time.sleep(0.02)

    def command(self) -> list[str]:
        """The child's `phone` command, after the log level."""
        return [
            "run",
            "--config",
            str(self.config_path),
            "--board",
            "virtual",
            "--control",
            f"unix:{self.socket}",
            *self.run_args,
        ]

    def __getattr__(self, name: str) -> Any:
        """Control commands (`press`, `state`, `wait_for`, ...) go to the client."""
        if self.client is None:
            raise AttributeError(name)
        return getattr(self.client, name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the phone unregisters and hangs up) and wait; returns 0.

        Raises `PhoneExitError`, once, if the phone had already died or exits
        with anything but status 0, or hangs past `timeout` (then it is killed).
        Returns None when the phone was never started."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is None:
            return None
        hung = False
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                hung = True
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        code = self.process.returncode
        if not self._exit_checked:
            self._exit_checked = True
            if hung:
                raise PhoneExitError(
                    f"phone {self.name} did not stop within {timeout} s of SIGTERM and was "
                    f"killed:\n{self.log_tail()}"
                )
            if code != 0:
                raise PhoneExitError(
                    f"phone {self.name} exited with {describe_exit(code)}:\n{self.log_tail()}"
                )
        return code
