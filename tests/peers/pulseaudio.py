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

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from tests.peers.process import PeerError, PeerProcess

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


class PulseAudioError(PeerError):
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


class PulseAudioServer(PeerProcess):
    """One private PulseAudio daemon with 16 kHz mono null sinks."""

    error = PulseAudioError

    def __init__(self, sinks: Iterable[str], rate: int = RATE) -> None:
        super().__init__("pulseaudio")
        self.sinks = tuple(sinks)
        self.rate = rate
        self._dir = Path(tempfile.mkdtemp(prefix="pulse-"))
        self.socket = self._dir / "native"
        self.alsa_config_path = self._dir / "asound.conf"
        self._log_path = self._dir / "pulse.log"
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
        self._spawn(
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
            self._log_path,
            cwd=self._dir,
            env=env,
        )
        try:
            self._wait_ready(self.socket.exists, START_TIMEOUT_S)
        except PulseAudioError:
            self._remove_files()
            raise
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
        assert self.pid is not None
        tasks = Path(f"/proc/{self.pid}/task")
        try:
            for task in tasks.iterdir():
                os.sched_setscheduler(
                    int(task.name), os.SCHED_FIFO, os.sched_param(DAEMON_PRIORITY)
                )
        except OSError as exc:
            log.info("pulseaudio keeps its own scheduling: %s", exc)

    def stop(self, timeout: float = 5.0) -> int | None:
        """Stop the daemon (its PCMs then fail like an unplugged card); `start` again works."""
        status = super().stop(timeout)
        self.socket.unlink(missing_ok=True)
        return status

    def _remove_files(self) -> None:
        """The daemon's directory, the ALSA config with it."""
        shutil.rmtree(self._dir, ignore_errors=True)

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
