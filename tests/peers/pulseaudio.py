"""A real-time ALSA stand-in for tests: a private PulseAudio with null sinks.

This machine has no sound card (see shared/notes/platform.md). ALSA's `pulse`
plugin talking to a PulseAudio null sink is paced like a real card and has a
working mixer, so the firmware's pyalsaaudio code runs unchanged against it.
Each instance runs its own daemon on its own unix socket in a temporary
directory, so several test runs can share the machine.

Every sink `NAME` gives two ALSA PCMs and one control, written to an ALSA
config file that `alsa_config_path` names (put `client_env(...)` in the
environment before the process first opens ALSA):

- `NAME_play`: playback into the sink;
- `NAME_rec`: capture from the sink's monitor (what was played into it);
- `NAME_ctl` (for `alsaaudio.Mixer("Master", device="NAME_ctl")`): the sink's
  volume and mute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

APT_LINE = "apt-get install -y --no-install-recommends pulseaudio libasound2-plugins"
ALSA_BASE_CONFIG = Path("/usr/share/alsa/alsa.conf")
START_TIMEOUT_S = 10.0
RATE = 16000
# No PULSE_LATENCY_MSEC: ALSA's pulse plugin asks PulseAudio for the buffer
# the application set up through ALSA (periods x period size), so what ALSA
# reports (avail) is what PulseAudio buffers for the client, as on a card.
# With PULSE_LATENCY_MSEC=40 PulseAudio buffered 40 ms where ALSA reported
# 80, which put the phone's echo reference 30-40 ms off, by a different
# amount on every run. Server-side buffering stays unreported, like the air
# between a speaker and a microphone: the phone measures both.
LATENCY_ENV = "PULSE_LATENCY_MSEC"
DAEMON_PRIORITY = 60  # SCHED_FIFO, above the rooms' and phones' audio threads


class PulseAudioError(RuntimeError):
    """The daemon could not be started; the message carries its log tail."""


def available() -> str | None:
    """None when PulseAudio and ALSA's pulse plugin are installed, else why not."""
    if shutil.which("pulseaudio") is None:
        return f"pulseaudio is not installed ({APT_LINE})"
    plugin_dirs = (Path("/usr/lib/x86_64-linux-gnu/alsa-lib"), Path("/usr/lib/alsa-lib"))
    if not any((d / "libasound_module_pcm_pulse.so").exists() for d in plugin_dirs):
        return f"ALSA's pulse plugin is missing ({APT_LINE})"
    return None


def client_env(*servers: PulseAudioServer) -> dict[str, str]:
    """Environment for a process using the PCMs of all `servers` (ALSA reads it once).

    Leave LATENCY_ENV out of it (remove it from the environment it joins).
    """
    paths = [str(ALSA_BASE_CONFIG)] + [str(s.alsa_config_path) for s in servers]
    return {"ALSA_CONFIG_PATH": ":".join(paths)}


class PulseAudioServer:
    """One private PulseAudio daemon with 16 kHz mono null sinks."""

    def __init__(self, sinks: Iterable[str], rate: int = RATE) -> None:
        self.sinks = tuple(sinks)
        self.rate = rate
        self._dir = Path(tempfile.mkdtemp(prefix="pulse-"))
        self.socket = self._dir / "native"
        self.alsa_config_path = self._dir / "asound.conf"
        self._log_path = self._dir / "pulse.log"
        self._process: subprocess.Popen[bytes] | None = None
        # Written now, so ALSA can be told about these PCMs before the daemon
        # runs: opening them then fails as a missing device does.
        self.alsa_config_path.write_text(self._alsa_config())

    # -- names ----------------------------------------------------------
    def playback_pcm(self, sink: str) -> str:
        return f"{sink}_play"

    def capture_pcm(self, sink: str) -> str:
        return f"{sink}_rec"

    def control(self, sink: str) -> str:
        return f"{sink}_ctl"

    @property
    def alsa_config_env(self) -> str:
        """The value for ALSA_CONFIG_PATH: ALSA's own config, then ours."""
        return client_env(self)["ALSA_CONFIG_PATH"]

    @property
    def client_env(self) -> dict[str, str]:
        """What a process needs in its environment, before it first opens ALSA."""
        return client_env(self)

    # -- lifecycle ------------------------------------------------------
    def start(self) -> PulseAudioServer:
        script = self._dir / "pa.pa"
        lines = [f"load-module module-native-protocol-unix socket={self.socket} auth-anonymous=1"]
        for sink in self.sinks:
            lines.append(
                f"load-module module-null-sink sink_name={sink} rate={self.rate} channels=1"
                f" format=s16le"
            )
        script.write_text("\n".join(lines) + "\n")
        env = dict(os.environ, HOME=str(self._dir), XDG_RUNTIME_DIR=str(self._dir))
        env.pop("PULSE_SERVER", None)
        with self._log_path.open("wb") as log_file:
            self._process = subprocess.Popen(
                [
                    "pulseaudio",
                    "-n",
                    "-F",
                    str(script),
                    "--daemonize=no",
                    "--exit-idle-time=-1",
                    "--use-pid-file=no",
                    "--disable-shm=yes",
                    "--system=no",
                    "--log-target=stderr",
                    "--high-priority=yes",
                    "--realtime=yes",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.socket.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self._log_tail()
                self.remove()
                raise PulseAudioError(f"pulseaudio did not start:\n{tail}")
            time.sleep(0.02)
        self._realtime()
        log.info("pulseaudio up on %s with sinks %s", self.socket, ", ".join(self.sinks))
        return self

    def _realtime(self) -> None:
        """Every daemon thread SCHED_FIFO above the audio threads of rooms and phones.

        PulseAudio's own choice (its sink threads at priority 5, the main
        thread, which moves every client's audio, at nice -11) lost to those
        real-time threads on a busy machine: clients' streams underran and the
        echo path jumped by 10-30 ms mid-call, as a card's DMA never does.
        Where that is not permitted the daemon keeps its own priorities.
        """
        assert self._process is not None
        tasks = Path(f"/proc/{self._process.pid}/task")
        try:
            for task in tasks.iterdir():
                os.sched_setscheduler(
                    int(task.name), os.SCHED_FIFO, os.sched_param(DAEMON_PRIORITY)
                )
        except OSError as exc:
            log.info("pulseaudio keeps its own scheduling: %s", exc)

    def stop(self) -> None:
        """Stop the daemon (its PCMs then fail like an unplugged card); `start` again works."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None
        self.socket.unlink(missing_ok=True)

    def remove(self) -> None:
        """Stop the daemon and delete its directory (the ALSA config with it)."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PulseAudioServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    # -- internals ------------------------------------------------------
    def _alsa_config(self) -> str:
        server = f"unix:{self.socket}"
        blocks = []
        for sink in self.sinks:
            # handle_underrun: an underrun in PulseAudio is an xrun in ALSA, as on a card.
            blocks.append(
                f'pcm.{self.playback_pcm(sink)} {{ type pulse server "{server}" device "{sink}"'
                f" handle_underrun true }}\n"
                f'pcm.{self.capture_pcm(sink)} {{ type pulse server "{server}"'
                f' device "{sink}.monitor" }}\n'
                f'ctl.{self.control(sink)} {{ type pulse server "{server}" device "{sink}" }}\n'
            )
        return "".join(blocks)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-20:])
        return "(no log)"
