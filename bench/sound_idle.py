"""What a phone on the ALSA board costs while nothing needs sound, and how soon it rings.

alice runs the ALSA bridge (WebRTC canceller, the default) on a private
PulseAudio's `pulse` PCMs, registered with Kamailio with bob as a contact;
bob is a phone on WAV files.

- idle CPU: alice's threads over `--idle-s` (schedstat, wake-ups a second as
  context switches), once after start and once after a call;
- press → first ring sample: bob presses alice's button, and a capture of
  alice's speaker (the sink's monitor, 5 ms periods) timestamps the first
  sample of the ring tone; bob then cancels, and the next round waits
  `--gap-s` (the bridge falls idle in between). The figure includes the
  INVITE's trip through Kamailio and PulseAudio's own latency, the same
  before and after a change of the bridge.

Run: python bench/sound_idle.py [--idle-s 20] [--rings 10] [--gap-s 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, pct, thread_cpu  # noqa: E402
from phone.remote import RemotePhone  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.peers.pulseaudio import LATENCY_ENV, PulseAudioServer, available, client_env  # noqa: E402
from tests.phones import account, has_call, no_calls, render_config  # noqa: E402

RATE = 16000
PERIOD = 80  # 5 ms: the resolution of the first-sample timestamp
HEARD = 1000  # a sample above this (-30 dBFS) is the tone, not the silence around it
TIMEOUT_S = 15.0


class SpeakerWatch:
    """Reads the monitor of alice's speaker sink and timestamps its first loud sample."""

    def __init__(self, device: str) -> None:
        import alsaaudio

        self._pcm = alsaaudio.PCM(
            alsaaudio.PCM_CAPTURE,
            device=device,
            channels=1,
            rate=RATE,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=PERIOD,
            periods=16,
        )
        self._armed: float | None = None
        self.heard_at: float | None = None
        self._heard = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            count, data = self._pcm.read()
            now = time.monotonic()
            if count <= 0 or self._armed is None or self._heard.is_set():
                continue
            loud = np.flatnonzero(np.abs(np.frombuffer(data, dtype="<i2")) > HEARD)
            if loud.size:
                self.heard_at = now - (count - int(loud[0])) / RATE
                self._heard.set()

    def arm(self) -> None:
        self.heard_at = None
        self._heard.clear()
        self._armed = time.monotonic()

    def wait(self) -> float:
        if not self._heard.wait(TIMEOUT_S) or self.heard_at is None:
            raise RuntimeError("no ring tone reached the speaker")
        return self.heard_at

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._pcm.close()


def print_threads(title: str, rows: list[tuple[str, float, float]]) -> None:
    print(f"{title} {sum(share for _, share, _ in rows):.2f} % of a core")
    for name, share, wakeups in rows:
        print(f"  {name:16s} {share:6.2f} %  {wakeups:7.1f} wake-ups/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--rings", type=int, default=10)
    parser.add_argument("--gap-s", type=float, default=3.0)
    args = parser.parse_args()
    reason = available()
    if reason is not None:
        raise SystemExit(reason)
    pulse = PulseAudioServer(["spk", "mic"])
    os.environ.update(client_env(pulse))  # before this process or a phone opens ALSA
    os.environ.pop(LATENCY_ENV, None)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp, Kamailio() as server:
        pulse.start()
        workdir = Path(tmp)
        board = {"capture_pcm": pulse.capture_pcm("mic"), "playback_pcm": pulse.playback_pcm("spk")}
        alice = RemotePhone(
            "alice",
            render_config(
                account(server, "alice"),
                [("Bob", server.uri("bob"))],
                workdir,
                "alice",
                board=board,
            ),
            workdir,
        )
        bob = RemotePhone(
            "bob",
            render_config(account(server, "bob"), [("Alice", server.uri("alice"))], workdir, "bob"),
            workdir,
        )
        watch = None
        try:
            for phone in (alice.start(), bob.start()):
                phone.wait_for(lambda s: s["registered"], timeout=TIMEOUT_S, what="registered")
            alice.wait_for(
                lambda s: (s["sound"] or {}).get("state") == "running",
                timeout=TIMEOUT_S,
                what="sound",
            )
            watch = SpeakerWatch(pulse.capture_pcm("spk"))
            time.sleep(3)
            assert alice.process is not None
            print_threads(
                f"alice idle after start, {args.idle_s:.0f} s:",
                thread_cpu(alice.process.pid, args.idle_s),
            )
            latencies = []
            for _ in range(args.rings):
                time.sleep(args.gap_s)
                watch.arm()
                pressed = time.monotonic()
                bob.press("contact-1")
                heard = watch.wait()
                latencies.append(heard - pressed)
                alice.wait_for(has_call("ringing"), timeout=TIMEOUT_S)
                bob.press("end")
                alice.wait_for(no_calls, timeout=TIMEOUT_S)
            print(
                f"press -> first ring sample at alice's speaker ({len(latencies)} rings, "
                f"{args.gap_s:.0f} s apart): p50 {1000 * statistics.median(latencies):.0f} ms, "
                f"p99 {1000 * pct(latencies, 99):.0f} ms, max {1000 * max(latencies):.0f} ms"
            )
            bob.press("contact-1")
            alice.wait_for(has_call("ringing"), timeout=TIMEOUT_S)
            alice.press("answer")
            bob.wait_for(has_call("confirmed"), timeout=TIMEOUT_S)
            time.sleep(3)
            bob.press("end")
            alice.wait_for(no_calls, timeout=TIMEOUT_S)
            time.sleep(3)
            print_threads(
                f"alice idle after a call, {args.idle_s:.0f} s:",
                thread_cpu(alice.process.pid, args.idle_s),
            )
        finally:
            if watch is not None:
                watch.close()
            for phone in (bob, alice):
                code = phone.stop()
                if code not in (0, None):
                    print(f"{phone.name} exited {code}")
            pulse.close()


if __name__ == "__main__":
    main()
