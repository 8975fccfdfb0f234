"""Echo cancellation benchmark: the figures issue 4 sets targets for.

Two measurements, printed with the machine they ran on:

- **call** (default): two whole phones, alice and bob, registered with
  Kamailio and in a call through it (alice presses bob's button, bob
  answers). Each phone is hands-free in its own virtual room
  (`python -m tests.audio.room`) on a private PulseAudio with four null sinks (each
  phone's speaker and microphone), with its own near-end talker. In the first
  half of the call alice talks and bob breaks in once (double talk at bob's
  end); in the second half bob talks and alice breaks in once. At each room,
  what the room played into its phone's microphone (near end + echo) is
  compared with what the other room heard from the other phone's speaker, so
  the figures are what the far end hears: codecs, jitter buffers and both
  phones' audio paths included. The bridge's counters come from each phone's
  control interface (`state` → `sound`), taken over the measured span.
- **in-process**: the audio path alone, in this process: far end (espeak-ng
  speech) → AlsaSound → ALSA `pulse` PCM → virtual room → ALSA `pulse` PCM →
  AlsaSound with pjmedia's echo canceller → far end, per canceller config.

Reported per run: ERLE after convergence (single talk, from 2 s after the far
end starts talking), the times to 20 dB and to 40 dB, near-end attenuation and the share of
near-end windows cut by more than 10 dB in double talk, deadline misses,
xruns, ring over/underruns and drift corrections, and the CPU share of the
audio path (ALSA thread + pjmedia port callbacks, thread CPU time over wall
time).

    python bench/aec.py [--seconds 60] [--off-seconds 20] [--config webrtc-moderate ...]
                        [--in-process-only | --call-only]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import cpu_seconds, machine  # noqa: E402
from phone.audio.alsa import AudioState, AudioStats  # noqa: E402
from phone.audio.echo import Aggressiveness, EchoAlgorithm, EchoConfig  # noqa: E402
from phone.audio.ring import RingStats  # noqa: E402
from phone.remote import RemotePhone  # noqa: E402
from tests.audio.rig import (  # noqa: E402
    ACTIVE_DB,
    TARGET_ERLE_DB,
    WINDOW_S,
    EchoFigures,
    RigRun,
    analyse,
    run_rig,
)
from tests.audio.room import EchoPath, level_db, read_wav, room_command, speech, write_wav  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.peers.pulseaudio import (  # noqa: E402
    LATENCY_ENV,
    PulseAudioServer,
    available,
    client_env,
)
from tests.phones import account, has_call, no_calls, render_config  # noqa: E402
from tests.sip.stack import poll_endpoint  # noqa: E402

RATE = 16000
CONFIGS = {
    "none": EchoConfig(EchoAlgorithm.NONE),
    "webrtc-conservative": EchoConfig(
        EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.CONSERVATIVE
    ),
    "webrtc-moderate": EchoConfig(EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.MODERATE),
    "webrtc-aggressive": EchoConfig(EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.AGGRESSIVE),
    "webrtc-moderate-ns": EchoConfig(
        EchoAlgorithm.WEBRTC, aggressiveness=Aggressiveness.MODERATE, noise_suppressor=True
    ),
    "speex": EchoConfig(EchoAlgorithm.SPEEX, tail_ms=200),
}
FAR_TEXT = (
    "The quick brown fox jumps over the lazy dog. Echo cancellation is measured on speech. "
    "A hardphone on a desk hears its own loudspeaker, and the far end must not."
)
NEAR_TEXT = "Another voice is speaking now, saying different words about the weather and trains."
DOUBLE_TALK_AT_S = (12.0, 40.0)
ROOM_START_TIMEOUT_S = 15.0
PHONE_TIMEOUT_S = 15.0
# Levels, not counters: a span's figure is the value at its end.
LEVEL_FIELDS = frozenset({"fill_samples", "alignment_ms"})


@dataclass(frozen=True)
class Speaker:
    """One phone's user in a call: what they say, and when, as fractions of the call."""

    name: str
    voice: str
    text: str
    seed: int
    speaks: tuple[tuple[float, float], ...]
    far_end_span: tuple[float, float]  # the part of the call measured at this room


# Alice talks through the first half, bob through the second; each breaks in
# once while the other talks (double talk at the interrupter's room).
ALICE = Speaker(
    "alice",
    "en",
    "Hello Bob, this is Alice calling about the delivery. The parcel left the warehouse "
    "this morning and should reach you before the weekend, weather permitting.",
    1,
    ((0.0, 0.5), (0.7, 0.8)),
    (0.5, 1.0),
)
BOB = Speaker(
    "bob",
    "en+f3",
    "Thanks for calling. I will be at home on Friday afternoon, so the courier can ring "
    "the bell twice and leave it with the neighbour if nobody answers.",
    2,
    ((0.2, 0.3), (0.5, 1.0)),
    (0.0, 0.5),
)


# -- reporting (both modes) ---------------------------------------------------
def print_figures(run: RigRun, fig: EchoFigures) -> None:
    if np.isnan(fig.erle_db):
        print("  ERLE after 2 s, single talk:   not measured (no single-talk windows after 2 s)")
    else:
        print(f"  ERLE after 2 s, single talk:   {fig.erle_db:6.1f} dB")
    converge = f"{fig.converge_s:.1f} s" if fig.converge_s is not None else "never"
    print(f"  time to ERLE >= 20 dB:          {converge} after the far end starts")
    target = f"{fig.target_s:.1f} s" if fig.target_s is not None else "never"
    print(f"  time to ERLE >= {TARGET_ERLE_DB:.0f} dB:          {target} (target: within 2 s)")
    if fig.near_attenuation_db is not None and fig.near_cut_share is not None:
        print(f"  near-end attenuation (double): {fig.near_attenuation_db:6.1f} dB")
        print(f"  near-end windows cut > 10 dB:  {fig.near_cut_share:6.1%}")
    else:
        print("  near-end attenuation (double): not measured (no double-talk windows)")
    floor = quiet_floor_db(run, fig)
    print(
        f"  echo at the microphone {fig.echo_off_level_db:.1f} dBFS (single talk); the far end "
        f"hears {'(no quiet windows)' if floor is None else f'{floor:.1f} dBFS'} while the "
        f"room is quiet; far-end lag {fig.lag_ms:.0f} ms"
    )


def quiet_floor_db(run: RigRun, fig: EchoFigures) -> float | None:
    """What the far end hears while the room's microphone has neither echo nor
    near end (the floor an ERLE figure can reach), None without such windows."""
    lag = round(fig.lag_ms * RATE / 1000)
    size = int(WINDOW_S * RATE)
    powers = []
    for start in range(max(-lag, 0), len(run.echo) - size, size):
        heard = run.sent[start + lag : start + lag + size]
        if len(heard) < size:
            break
        if (
            max(level_db(run.echo[start : start + size]), level_db(run.near[start : start + size]))
            < ACTIVE_DB - 10
        ):
            powers.append(float(np.mean(np.square(heard))))
    if not powers:
        return None
    return level_db(np.sqrt(np.array([np.mean(powers)])))


def discontinuities(st: AudioStats) -> int:
    """Gaps or jumps a listener could hear: device xruns and ring over/underruns
    (drift corrections stretch a frame by one sample, which is not heard)."""
    return (
        st.capture_overruns
        + st.playback_underruns
        + st.capture.overruns
        + st.capture.underruns
        + st.playback.overruns
        + st.playback.underruns
    )


def print_stats(st: AudioStats, wall_s: float) -> None:
    alignment = "none" if st.alignment_ms is None else f"{st.alignment_ms:.1f} ms"
    print(
        f"  deadline misses: {st.deadline_misses} (late cycles {st.late_cycles}, "
        f"capture overruns {st.capture_overruns}, playback underruns "
        f"{st.playback_underruns}); audible discontinuities (xruns + ring "
        f"over/underruns): {discontinuities(st)}"
    )
    print(
        f"  rings: capture over/under {st.capture.overruns}/{st.capture.underruns}, "
        f"playback over/under {st.playback.overruns}/{st.playback.underruns}; "
        f"drift corrections {st.drift_corrections} samples; realignments "
        f"{st.realignments} (alignment {alignment})"
    )
    print(
        f"  CPU of the audio path: {100 * st.cpu_seconds / wall_s:.1f} % of a core "
        f"over {wall_s:.0f} s; aec={'on' if st.aec else 'off'} ({st.aec_backend})"
    )


# -- in-process: the audio path alone -------------------------------------------
def near_track(seconds: float) -> np.ndarray:
    """Silence with the near-end talker at DOUBLE_TALK_AT_S."""
    talk = speech(NEAR_TEXT, voice="en+f3", seed=2)
    track = np.zeros(int(seconds * RATE))
    for at in DOUBLE_TALK_AT_S:
        start = int(at * RATE)
        if start < len(track):
            piece = talk[: len(track) - start]
            track[start : start + len(piece)] = piece
    return track


def in_process(
    pulse: PulseAudioServer, names: list[str], args: argparse.Namespace, path: EchoPath
) -> None:
    ep = poll_endpoint()
    far_one = speech(FAR_TEXT, voice="en", seed=1)
    far = np.tile(far_one, int(args.seconds * RATE / len(far_one)) + 2)
    near = near_track(args.seconds + 5)
    print("\n== in-process: far end -> AlsaSound -> ALSA pulse PCMs -> virtual room ->")
    print("   AlsaSound + AEC -> far end (the audio path alone, no codec, no network)")
    print(
        f"near-end talker at {', '.join(f'{t:.0f} s' for t in DOUBLE_TALK_AT_S)}; "
        f"{args.seconds:.0f} s per run"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="aec-bench-") as tmp:
            for name in names:
                run = run_rig(
                    pulse,
                    Path(tmp) / name,
                    CONFIGS[name],
                    far,
                    args.seconds,
                    near=near,
                    echo_path=path,
                    noise_db=args.noise_db,
                )
                print(f"\n[in-process {name}]")
                print_figures(run, analyse(run))
                print_stats(run.stats, run.wall_s)
    finally:
        ep.libDestroy()


# -- call: two whole phones through Kamailio -------------------------------------
def talk_track(speaker: Speaker, seconds: float) -> np.ndarray:
    """The speaker's voice in the stretches `speaks` of a call of `seconds`, else silence."""
    voice = speech(speaker.text, voice=speaker.voice, seed=speaker.seed)
    track = np.zeros(int((seconds + 5) * RATE))
    for begin, end in speaker.speaks:
        start, stop = int(begin * seconds * RATE), int(end * seconds * RATE)
        repeats = (stop - start) // len(voice) + 1
        track[start:stop] = np.tile(voice, repeats)[: stop - start]
    return track


def stats_over(before: dict[str, Any], after: dict[str, Any]) -> AudioStats:
    """The bridge's counters between two `state` → `sound` answers."""

    def counted(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in a.items():
            if isinstance(value, dict):
                out[key] = counted(value, b[key])
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = value if key in LEVEL_FIELDS else value - b[key]
            else:
                out[key] = value
        return out

    span = counted(after, before)
    del span["drift_corrections"]  # a property of AudioStats
    return AudioStats(
        **{
            **span,
            "state": AudioState(span["state"]),
            "capture": RingStats(**span["capture"]),
            "playback": RingStats(**span["playback"]),
        }
    )


@dataclass
class Room:
    process: subprocess.Popen[bytes]
    record_dir: Path
    started: float = 0.0  # monotonic time of the room's first frame (room time 0)


def start_room(
    pulse: PulseAudioServer,
    name: str,
    talker: Path,
    record_dir: Path,
    path: EchoPath,
    noise_db: float,
) -> Room:
    command = room_command(
        pulse.capture_pcm(f"{name}_spk"),
        pulse.playback_pcm(f"{name}_mic"),
        path,
        noise_db,
        talker=talker,
        record_dir=record_dir,
        realtime_priority=50,
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    return Room(process, record_dir)


def wait_room(room: Room) -> None:
    stdout = room.process.stdout
    assert stdout is not None
    ready, _, _ = select.select([stdout], [], [], ROOM_START_TIMEOUT_S)
    if not ready or stdout.readline().strip() != b"room running":
        raise RuntimeError(f"the room recording to {room.record_dir} did not start")
    room.started = time.monotonic()


def stop_room(room: Room) -> None:
    """SIGTERM makes the room write its recordings; SIGKILL if it hangs."""
    if room.process.poll() is None:
        room.process.send_signal(signal.SIGTERM)
        try:
            room.process.wait(10)
        except subprocess.TimeoutExpired:
            room.process.kill()
            room.process.wait()


@dataclass
class CallRun:
    seconds: float
    rooms: dict[str, Room]
    stats: dict[str, AudioStats]
    process_cpu_s: dict[str, float]
    wall_s: float
    glitch_times: dict[str, list[float]]  # seconds into the span when discontinuities rose


def run_call(
    pulse: PulseAudioServer,
    server: Kamailio,
    workdir: Path,
    echo: str,
    seconds: float,
    path: EchoPath,
    noise_db: float,
) -> CallRun:
    """One call of `seconds` between alice and bob in their rooms, recorded."""
    workdir.mkdir(parents=True)
    speakers = {s.name: s for s in (ALICE, BOB)}
    rooms: list[Room] = []
    phones: dict[str, RemotePhone] = {}
    with contextlib.ExitStack() as cleanup:
        for name, other in (("alice", "bob"), ("bob", "alice")):
            config = render_config(
                account(server, name),
                [(other.title(), server.uri(other))],
                workdir,
                name,
                board={
                    "capture_pcm": pulse.capture_pcm(f"{name}_mic"),
                    "playback_pcm": pulse.playback_pcm(f"{name}_spk"),
                    "mixer": "Master",
                    "mixer_device": pulse.control(f"{name}_spk"),
                },
                audio={"echo": echo},
            )
            phone = RemotePhone(name, config, workdir)
            cleanup.callback(phone.stop)
            phones[name] = phone.start(PHONE_TIMEOUT_S)
        alice, bob = phones["alice"], phones["bob"]
        for phone in phones.values():
            phone.wait_for(
                lambda s: s["registered"] and (s["sound"] or {}).get("state") == "running",
                timeout=PHONE_TIMEOUT_S,
                what=f"{phone.name} registered with sound",
            )
        alice.press("contact-1")
        bob.wait_for(has_call("ringing"), timeout=PHONE_TIMEOUT_S)
        bob.press("answer")
        for phone in phones.values():
            phone.wait_for(has_call("confirmed"), timeout=PHONE_TIMEOUT_S)
        for name, speaker in speakers.items():
            talker = workdir / f"{name}-talker.wav"
            write_wav(talker, talk_track(speaker, seconds))
            room = start_room(pulse, name, talker, workdir / f"{name}-room", path, noise_db)
            cleanup.callback(stop_room, room)
            rooms.append(room)
        for room in rooms:
            wait_room(room)
        before = {name: p.state()["sound"] for name, p in phones.items()}
        cpu_before = {name: cpu_seconds(p.process.pid) for name, p in phones.items()}
        started = time.monotonic()
        glitches: dict[str, list[float]] = {name: [] for name in phones}
        counted = dict.fromkeys(phones, 0)
        while (left := rooms[0].started + seconds - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            for name, p in phones.items():
                count = discontinuities(stats_over(before[name], p.state()["sound"]))
                if count > counted[name]:
                    glitches[name].append(time.monotonic() - started)
                    counted[name] = count
        after = {name: p.state() for name, p in phones.items()}
        wall = time.monotonic() - started
        cpu = {name: cpu_seconds(p.process.pid) - cpu_before[name] for name, p in phones.items()}
        for name, state in after.items():
            if [c["state"] for c in state["calls"]] != ["confirmed"]:
                raise RuntimeError(f"{name}'s call did not last: {state['calls']}")
        for room in rooms:
            stop_room(room)
        alice.press("end")
        bob.wait_for(no_calls, timeout=PHONE_TIMEOUT_S)
    return CallRun(
        seconds=seconds,
        rooms=dict(zip(speakers, rooms, strict=True)),
        stats={name: stats_over(before[name], after[name]["sound"]) for name in phones},
        process_cpu_s=cpu,
        wall_s=wall,
        glitch_times=glitches,
    )


def at_room(call: CallRun, near_end: Speaker, far_end: Speaker) -> RigRun:
    """The figures' inputs at `near_end`'s room over its measured span: its mic's
    parts, and what `far_end`'s room heard from `far_end`'s phone in the same span."""
    here, there = call.rooms[near_end.name], call.rooms[far_end.name]
    begin, end = (int(f * call.seconds * RATE) for f in near_end.far_end_span)
    echo = read_wav(here.record_dir / "echo.wav")[begin:end]
    near = read_wav(here.record_dir / "near.wav")[begin:end]
    # The same moment in the other room's time, then some slack for the lag.
    shift = int(round((here.started - there.started) * RATE))
    heard = read_wav(there.record_dir / "played.wav")
    first = begin + shift
    slack = RATE
    padded = np.concatenate([np.zeros(max(-first, 0)), heard[max(first, 0) :]])
    sent = padded[: end - begin + slack]
    return RigRun(
        far=np.zeros(0),
        sent=sent,
        echo=echo,
        near=near,
        stats=call.stats[near_end.name],
        wall_s=call.wall_s,
    )


def call_mode(args: argparse.Namespace, pulse: PulseAudioServer, path: EchoPath) -> None:
    print("\n== call: alice and bob, whole phones registered with Kamailio, each hands-free in")
    print("   its own virtual room; measured at each room against what the other room heard")
    for speaker in (ALICE, BOB):
        stretches = ", ".join(f"{a:.0%}-{b:.0%}" for a, b in speaker.speaks)
        begin, end = speaker.far_end_span
        print(
            f"{speaker.name} talks at {stretches} of the call; {speaker.name}'s room is "
            f"measured over {begin:.0%}-{end:.0%}"
        )
    with Kamailio() as server, tempfile.TemporaryDirectory(prefix="aec-call-") as tmp:
        for echo, seconds in (("webrtc", args.seconds), ("none", args.off_seconds)):
            call = run_call(pulse, server, Path(tmp) / echo, echo, seconds, path, args.noise_db)
            for near_end, far_end in ((BOB, ALICE), (ALICE, BOB)):
                run = at_room(call, near_end, far_end)
                print(
                    f"\n[call, echo={echo}, {seconds:.0f} s] at {near_end.name}'s room "
                    f"(far end {far_end.name}, measured over "
                    f"{(near_end.far_end_span[1] - near_end.far_end_span[0]) * seconds:.0f} s)"
                )
                print_figures(run, analyse(run))
                print_stats(run.stats, call.wall_s)
                print(
                    f"  whole {near_end.name} process: "
                    f"{100 * call.process_cpu_s[near_end.name] / call.wall_s:.1f} % of a core "
                    f"(SIP, codec, jitter buffer, pjmedia clock, control socket)"
                )
                if times := call.glitch_times[near_end.name]:
                    seen = ", ".join(f"{t:.0f} s" for t in times)
                    print(f"  discontinuities seen by the 1 s poll at: {seen}")


def main() -> None:
    parser = argparse.ArgumentParser(description="echo cancellation benchmark")
    parser.add_argument("--seconds", type=float, default=60.0, help="per run, AEC on")
    parser.add_argument("--off-seconds", type=float, default=20.0, help="the call without AEC")
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS))
    parser.add_argument("--delay-ms", type=float, default=40.0)
    parser.add_argument("--decay-ms", type=float, default=100.0)
    parser.add_argument("--gain-db", type=float, default=-6.0)
    parser.add_argument("--noise-db", type=float, default=-90.0)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--in-process-only", action="store_true", help="skip the call")
    only.add_argument("--call-only", action="store_true", help="skip the in-process runs")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    reason = available()
    if reason is not None:
        raise SystemExit(reason)
    sys.setswitchinterval(0.0005)
    # A SIGTERM unwinds like Ctrl-C, so Kamailio, rooms, phones and PulseAudio stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    path = EchoPath(args.delay_ms, args.decay_ms, args.gain_db)
    local = PulseAudioServer(["spk", "mic"])
    call = PulseAudioServer(["alice_spk", "alice_mic", "bob_spk", "bob_mic"])
    # ALSA reads its configuration once per process: name every PCM now.
    os.environ.update(client_env(local, call))
    os.environ.pop(LATENCY_ENV, None)
    print(f"machine: {machine()}")
    print(
        f"room: echo {path.delay_ms:.0f} ms delay, {path.decay_ms:.0f} ms decay, "
        f"{path.gain_db:.1f} dB; noise {args.noise_db:.0f} dBFS"
    )
    try:
        if not args.call_only:
            local.start()
            in_process(local, args.config or list(CONFIGS), args, path)
        if not args.in_process_only:
            call.start()
            call_mode(args, call, path)
    finally:
        local.close()
        call.close()


if __name__ == "__main__":
    main()
