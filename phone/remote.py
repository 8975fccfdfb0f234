"""A phone in a child process, driven through its control interface.

pjsua allows one endpoint per process, so two phones talking to each other
(the demo, the end-to-end tests, the benchmarks) are two processes. This
starts `python -m phone run` on a virtual board with a Unix control socket
and hands back a `ControlClient` to it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from phone.control import ControlClient


class RemotePhone:
    def __init__(
        self, name: str, config_path: Path, workdir: Path, log_level: str = "INFO"
    ) -> None:
        self.name = name
        self.config_path = config_path
        self.socket = workdir / f"{name}.sock"
        self.log_path = workdir / f"{name}.log"
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self.client: ControlClient | None = None
        self._log: IO[bytes] | None = None
        self.env: dict[str, str] = {}  # added to the child's environment

    def start(self, timeout: float = 15.0) -> RemotePhone:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the child
        # Its own session: a Ctrl-C meant for the parent (the demo) does not reach
        # the child, which the parent stops itself.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "phone", "--log-level", self.log_level, *self.command()],
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
                    self.client = ControlClient(f"unix:{self.socket}")
                    return self
            if time.monotonic() > deadline:
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
        """SIGTERM (the phone unregisters and hangs up), then SIGKILL if it hangs."""
        if self.client is not None:
            self.client.close()
            self.client = None
        code = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
        elif self.process is not None:
            code = self.process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code
