"""`make stress`: start and stop the audio bridge 200 times and make 200 calls, loaded.

Outside the normal suite (pytest collects only `test_*.py`, and this takes
minutes): it is run before a release and after changes to the audio path or
to pjsua2 object lifetimes, and its figures go to bench/README.md. It lives
with the tests because it drives the test peers (a private PulseAudio, the
far-end ports, phones in child processes).

While it runs, one CPU hog process per core keeps the machine loaded.

- **Bridge**: an `AlsaSound` with pjmedia's WebRTC canceller on the
  PulseAudio PCMs is started, fed and heard through far-end bridge ports,
  and destroyed, 200 times. Each round ends at the worst moment for
  lifetimes: the ports' last references go while this thread holds the GIL
  past a clock tick, then the collector runs. Rounds run in worker
  processes of 50; a worker that dies is a crash, its stack (faulthandler)
  is kept, and the next worker goes on from the following round.
- **Calls**: two phones in direct mode, `alice` on the ALSA PCMs (bridge and
  canceller) and `bob` on WAV files, call each other 200 times: in turn each
  way, every tenth call rejected. They are restarted (SIGTERM) every 50 calls.
  A phone that dies during the calls is a crash; the exit status of every stop
  is checked and reported apart.

Exit status 0 only with no crash and every stop clean.

    python -m tests.stress.audio_and_calls [--rounds 200] [--calls 200] [--hogs N]
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phone.demo import free_port
from phone.remote import RemotePhone
from tests.peers.pulseaudio import PulseAudioServer, available, client_env
from tests.phones import PhoneFactory, has_call, no_calls

REPO = Path(__file__).resolve().parents[2]
ROUNDS_PER_WORKER = 50
CALLS_PER_PHONE_LIFE = 50
REJECT_EVERY = 10
TALK_S = 0.3


# -- bridge: the worker side (its own process) -----------------------------------
def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def bridge_round(index: int, capture: str, playback: str) -> list[object]:
    """Start the bridge and its canceller, pass audio both ways, end everything;
    returns the ended objects, for the caller to drop."""
    from phone.audio.alsa import AlsaSound, AudioConfig
    from phone.audio.echo import EchoConfig
    from tests.audio.farend import FarEnd

    sound = AlsaSound(AudioConfig(capture, playback, echo=EchoConfig()))
    far_end = FarEnd()
    try:
        talker = far_end.talker(bytes(range(256)) * 100)
        listener = far_end.listener()
        sound.open()
        started = wait_until(lambda: sound.stats().cycles >= 5)
        port = sound.port
        talker.startTransmit(port)
        port.startTransmit(listener)
        flowing = wait_until(lambda: sound.stats().pj_frames >= 5)
        if not (sound.stats().aec and started and flowing):
            raise SystemExit(f"round {index}: no audio through the bridge: {sound.stats()}")
    finally:
        far_end.destroy()
        sound.destroy()
    return [sound, talker, listener, port]  # a list is freed from its end: the port first


def bridge_worker(first: int, last: int, capture: str, playback: str) -> None:
    """Rounds first..last in this process, one line each; exit 0 when all passed."""
    from tests.audio.bridge_teardown import drop_after_holding_the_gil, endpoint

    sys.setswitchinterval(0.0005)  # as the phone runs
    ep = endpoint()
    for index in range(first, last + 1):
        # The last references go while this thread holds the GIL past a clock tick.
        drop_after_holding_the_gil(bridge_round(index, capture, playback))
        gc.collect()
        print(f"round {index} ok", flush=True)
    ep.libDestroy()


# -- bridge: the supervisor side -------------------------------------------------
@dataclass
class BridgeResult:
    rounds: int = 0
    crashes: list[str] = field(default_factory=list)  # a worker killed by a signal
    failures: list[str] = field(default_factory=list)  # a round whose checks failed
    seconds: float = 0.0


def run_bridge(rounds: int, pulse: PulseAudioServer) -> BridgeResult:
    result = BridgeResult()
    started = time.monotonic()
    next_round = 1
    while next_round <= rounds:
        last = min(rounds, next_round + ROUNDS_PER_WORKER - 1)
        worker = subprocess.run(
            [
                sys.executable,
                "-X",
                "faulthandler",
                "-m",
                "tests.stress.audio_and_calls",
                "bridge-worker",
                str(next_round),
                str(last),
                pulse.capture_pcm("mic"),
                pulse.playback_pcm("spk"),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60 + 30 * (last - next_round + 1),
        )
        done = [int(line.split()[1]) for line in worker.stdout.splitlines() if line.endswith(" ok")]
        result.rounds += len(done)
        reached = done[-1] if done else next_round - 1
        if worker.returncode != 0:
            reached += 1  # the round that ended the worker counts as run
            result.rounds += 1
            what = f"round {reached}: worker exit status {worker.returncode}\n"
            what += worker.stderr[-3000:]
            crashed = worker.returncode < 0 or "Fatal Python error" in worker.stderr
            (result.crashes if crashed else result.failures).append(what)
            print(("crash: " if crashed else "failed: ") + what, flush=True)
        print(f"bridge: rounds {next_round}-{reached} done", flush=True)
        next_round = reached + 1
    result.seconds = time.monotonic() - started
    return result


# -- calls -----------------------------------------------------------------------
@dataclass
class CallResult:
    calls: int = 0
    answered: int = 0
    rejected: int = 0
    crashes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # a call that failed, both phones up
    stops: list[tuple[str, int | None, str]] = field(default_factory=list)
    sound: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def unclean_stops(self) -> list[tuple[str, int | None, str]]:
        return [stop for stop in self.stops if stop[1] != 0]


class PhonePair:
    """alice (ALSA, canceller) and bob (WAV), each the other's contact-1."""

    def __init__(self, workdir: Path, pulse: PulseAudioServer) -> None:
        workdir.mkdir(parents=True)
        self.factory = PhoneFactory(workdir)
        a_port, b_port = free_port(), free_port()
        board = {
            "capture_pcm": pulse.capture_pcm("mic"),
            "playback_pcm": pulse.playback_pcm("spk"),
        }
        self.alice, _ = self.factory.direct(
            "alice",
            [("Bob", f"sip:bob@127.0.0.1:{b_port}")],
            port=a_port,
            board=board,
            audio={"echo": "webrtc"},
        )
        self.bob, _ = self.factory.direct(
            "bob",
            [("Alice", f"sip:alice@127.0.0.1:{a_port}")],
            port=b_port,
            mic=self.factory.tone("bob", 500),
        )

    @property
    def phones(self) -> tuple[RemotePhone, RemotePhone]:
        return self.alice, self.bob

    def dead(self) -> list[str]:
        out = []
        for phone in self.phones:
            assert phone.process is not None
            code = phone.process.poll()
            if code is not None:
                out.append(f"{phone.name} died with status {code}:\n{phone.log_tail(40)}")
        return out

    def stop(self) -> list[tuple[str, int | None, str]]:
        """Each phone's name, exit status and, when not 0, its last words."""
        stops = []
        for phone in self.phones:
            code = phone.stop()
            last = phone.log_tail(5).splitlines() if code != 0 else []
            why = next((line for line in last if "Assertion" in line or "Fatal" in line), "")
            stops.append((phone.name, code, why.strip()))
        return stops


def one_call(caller: RemotePhone, callee: RemotePhone, reject: bool) -> None:
    caller.press("contact-1")
    callee.wait_for(has_call("ringing"), what="ringing")
    if reject:
        callee.press("end")
    else:
        callee.press("answer")
        caller.wait_for(has_call("confirmed"), what="confirmed")
        time.sleep(TALK_S)
        caller.press("end")
    caller.wait_for(no_calls, what="the caller idle")
    callee.wait_for(no_calls, what="the callee idle")


def run_calls(calls: int, pulse: PulseAudioServer, workdir: Path) -> CallResult:
    result = CallResult()
    started = time.monotonic()
    pair: PhonePair | None = None
    life = 0
    while result.calls < calls:
        if pair is None:
            life += 1
            pair = PhonePair(workdir / f"life-{life}", pulse)
        n = result.calls
        caller, callee = pair.phones if n % 2 == 0 else pair.phones[::-1]
        reject = n % REJECT_EVERY == REJECT_EVERY - 1
        failed = False
        try:
            one_call(caller, callee, reject)
        except (TimeoutError, OSError, ValueError) as exc:
            failed = True
            if not pair.dead():
                result.failures.append(f"call {n + 1}: {exc}")
        result.calls += 1
        result.rejected += reject
        result.answered += not reject
        dead = pair.dead()
        result.crashes.extend(f"call {n + 1}: {d}" for d in dead)
        restart = failed or dead or result.calls % CALLS_PER_PHONE_LIFE == 0
        if restart or result.calls == calls:
            if not dead:
                result.sound.append(pair.alice.state()["sound"])
            result.stops += pair.stop()
            pair = None
            print(f"calls: {result.calls} done", flush=True)
    result.seconds = time.monotonic() - started
    return result


# -- load and report -------------------------------------------------------------
@contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """`count` processes spinning on a core each, for the duration."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.send_signal(signal.SIGTERM)
        for hog in hogs:
            hog.wait(timeout=10)


def report(bridge: BridgeResult, calls: CallResult, hogs: int, load: str) -> bool:
    print()
    print(f"machine: {os.cpu_count()} cores, {hogs} CPU hog processes, load average {load}")
    print(
        f"bridge: {bridge.rounds} start/stop rounds (AlsaSound + WebRTC canceller, far-end "
        f"ports), {len(bridge.crashes)} crashes, {len(bridge.failures)} failed, "
        f"{bridge.seconds:.0f} s"
    )
    print(
        f"calls: {calls.calls} calls ({calls.answered} answered, {calls.rejected} rejected), "
        f"{len(calls.crashes)} crashes, {len(calls.failures)} failed, {len(calls.stops)} phone stops "
        f"({len(calls.unclean_stops)} not exiting 0), {calls.seconds:.0f} s"
    )
    for stats in calls.sound:
        print(
            f"  alice's sound at a stop: {stats['state']}, {stats['cycles']} cycles, "
            f"{stats['deadline_misses']} deadline misses, aec {stats['aec_backend']}"
        )
    for name, code, why in calls.unclean_stops:
        print(f"  stop: {name} exited {code}: {why}")
    for failure in bridge.failures + calls.failures:
        print("failed:", failure)
    for crash in bridge.crashes + calls.crashes:
        print("crash:", crash)
    failed = bridge.failures or calls.failures or calls.unclean_stops
    return not (bridge.crashes or calls.crashes or failed)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "bridge-worker":
        bridge_worker(int(argv[1]), int(argv[2]), argv[3], argv[4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="bridge start/stop rounds")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1, help="CPU hogs")
    args = parser.parse_args(argv)
    reason = available()
    if reason is not None:
        print(f"stress: {reason}", file=sys.stderr)
        return 2
    pulse = PulseAudioServer(["spk", "mic"])
    os.environ.update(client_env(pulse))  # every child opens ALSA through it
    with (
        tempfile.TemporaryDirectory(prefix="stress-") as tmp,
        pulse,  # started here, removed at the end
        cpu_hogs(args.hogs),
    ):
        bridge = run_bridge(args.rounds, pulse)
        calls = run_calls(args.calls, pulse, Path(tmp))
        load = Path("/proc/loadavg").read_text().split()[0]
    return 0 if report(bridge, calls, args.hogs, load) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
