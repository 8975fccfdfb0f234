"""An echo rig: far end -> AlsaSound -> ALSA -> room (echo + talker) -> ALSA -> far end.

It runs in the process that owns the pjsua2 Endpoint: the far end is a pair of
bridge ports (`farend`), the room runs as its own process (`python -m
tests.audio.room`) so it never competes for this process's GIL. `analyse` turns the
recordings into the figures the AEC targets are written in.

A take in which the machine stalled the rig (the room's own xruns, ALSA xruns
or ring over/underruns on the phone's side) measures the stall, not the
canceller: such a take is void and is taken again, up to RIG_TAKES times.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from phone.audio.alsa import AlsaSound, AudioConfig, AudioStats
from phone.audio.echo import EchoConfig
from phone.audio.tones import ToneKind, tone
from tests.audio.farend import FarEnd
from tests.audio.room import (
    EchoPath,
    level_db,
    read_glitches,
    read_wav,
    room_command,
    to_pcm,
    write_wav,
)
from tests.peers.pulseaudio import PulseAudioServer

RATE = 16000
REPO = Path(__file__).resolve().parents[2]
WINDOW_S = 0.1
ACTIVE_DB = -50.0  # a window counts as speech above this level
TARGET_ERLE_DB = 40.0  # issue 15: on every call, within 2 s
RIG_TAKES = 4
CALL_LEAD_S = 1.0  # room recording kept before the (last) call
# How long a call waits on an idle bridge: the PCMs it reopened to idle on
# ALSA's pulse plugin start at once after about 2 s, up to 1.9 s late before.
IDLE_S = 2.5
T = TypeVar("T")


@dataclass
class RigRun:
    far: np.ndarray  # what the far end said
    sent: np.ndarray  # what the far end heard back (echo residual + near end)
    echo: np.ndarray  # the echo at the microphone, room time
    near: np.ndarray  # the near-end talker at the microphone, room time
    stats: AudioStats
    wall_s: float
    glitches: list[str]  # breaks in the rig's timing; empty on a clean take
    void_takes: list[str]  # why earlier takes were void


def stall_glitches(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The phone-side signs of a stall between two readings of its sound counters
    (`AudioStats` as plain data, as the control interface reports it): ALSA
    xruns and ring over/underruns."""

    def counts(stats: dict[str, Any]) -> dict[str, int]:
        return {
            "capture overruns": stats["capture_overruns"],
            "playback underruns": stats["playback_underruns"],
            "capture ring overruns": stats["capture"]["overruns"],
            "capture ring underruns": stats["capture"]["underruns"],
            "playback ring overruns": stats["playback"]["overruns"],
            "playback ring underruns": stats["playback"]["underruns"],
        }

    start, end = counts(before), counts(after)
    return [f"phone {name}: {end[name] - start[name]}" for name in end if end[name] != start[name]]


@dataclass(frozen=True)
class EchoFigures:
    erle_db: float  # single talk, after `converged_after_s`
    converge_s: float | None  # first time the per-window ERLE holds >= 20 dB
    target_s: float | None  # first time it holds >= TARGET_ERLE_DB
    near_attenuation_db: float | None  # double talk
    near_cut_share: float | None  # share of double-talk windows cut by > 10 dB
    echo_off_level_db: float  # the echo at the microphone, for scale
    lag_ms: float  # sent stream behind room time
    erle_by_s: tuple[float, ...] = ()  # single-talk ERLE second by second, to see when it broke


def run_rig(
    pulse: PulseAudioServer,
    workdir: Path,
    echo: EchoConfig,
    far: np.ndarray,
    seconds: float,
    near: np.ndarray | None = None,
    echo_path: EchoPath | None = None,
    noise_db: float = -90.0,
    realtime_priority: int | None = 50,
    calls: int = 1,
    ringback_s: float = 0.0,
) -> RigRun:
    """Play `far` for `seconds` through a room on sinks `spk`/`mic` of `pulse`:
    the first take without a glitch (each in `workdir`/take-N).

    Each call starts on an idle bridge (its card stopped, as a phone's is
    between calls); with `calls` > 1 the same bridge and room make that many
    calls in a row, and the run is the last of them. With `ringback_s`, each
    call is preceded by that long of ringback, stopped as the far end starts
    talking (an outgoing call answered)."""

    def take(n: int) -> tuple[RigRun, list[str]]:
        run = _take(
            pulse, workdir / f"take-{n}", echo, far, seconds, near, echo_path, noise_db,
            realtime_priority, calls, ringback_s,
        )  # fmt: skip
        return run, run.glitches

    run, run.void_takes = first_clean_take(take)
    return run


def first_clean_take(take: Callable[[int], tuple[T, list[str]]]) -> tuple[T, list[str]]:
    """The result of the first of RIG_TAKES takes (`take(n)`: its result and its
    glitches) in which the machine did not stall the rig, and why the takes
    before it were void; the test fails when every take was."""
    void: list[str] = []
    for n in range(1, RIG_TAKES + 1):
        result, glitches = take(n)
        if not glitches:
            return result, void
        void.append(f"take {n}: {'; '.join(glitches)}")
    pytest.fail(f"the machine stalled the rig in every take: {void}")


def _take(
    pulse: PulseAudioServer,
    workdir: Path,
    echo: EchoConfig,
    far: np.ndarray,
    seconds: float,
    near: np.ndarray | None,
    echo_path: EchoPath | None,
    noise_db: float,
    realtime_priority: int | None,
    calls: int,
    ringback_s: float,
) -> RigRun:
    path = echo_path or EchoPath()
    workdir.mkdir(parents=True, exist_ok=True)
    talker = None
    if near is not None:
        talker = workdir / "near-talker.wav"
        write_wav(talker, near)
    command = room_command(
        pulse.capture_pcm("spk"),
        pulse.playback_pcm("mic"),
        path,
        noise_db,
        talker=talker,
        record_dir=workdir / "room",
        realtime_priority=realtime_priority,
    )
    env = dict(os.environ, **pulse.client_env, PYTHONPATH=str(REPO))
    room = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE)
    far_end = FarEnd()
    sound = AlsaSound(
        AudioConfig(
            capture_pcm=pulse.capture_pcm("mic"),
            playback_pcm=pulse.playback_pcm("spk"),
            echo=echo,
            realtime_priority=realtime_priority,
        )
    )
    try:
        assert room.stdout is not None
        if room.stdout.readline().strip() != b"room running":
            raise RuntimeError("the room did not start")
        room_started = time.monotonic()
        sound.open()
        for _ in range(calls):
            wait_idle(sound)
            if ringback_s:
                sound.play_tone(tone(ToneKind.RINGBACK))
                time.sleep(ringback_s)
                sound.play_tone(None)
            talker = far_end.talker(to_pcm(far))
            listener = far_end.listener()
            started, started_stats = time.monotonic(), sound.stats()
            talker.startTransmit(sound.port)
            sound.port.startTransmit(listener)
            time.sleep(seconds)
            talker.stopTransmit(sound.port)
            sound.port.stopTransmit(listener)
            wall = time.monotonic() - started
            sent = np.frombuffer(listener.take(), dtype="<i2").astype(np.float64)
            stats = sound.stats()
    finally:
        # Every bridge port ends explicitly here, while the clock still runs
        # (see phone/audio/bridge_port.py), then the room stops.
        far_end.destroy()
        sound.destroy()
        room.send_signal(signal.SIGTERM)
        status = room.wait(timeout=10)
    if status != 0:
        raise RuntimeError(f"the room exited with status {status}")
    # The room's recordings from shortly before the (last) call, so the
    # analysis finds its echo within its search (room time 0 is about when it
    # said it runs; the bridge idled in between).
    skip = int(max(0.0, started - room_started - CALL_LEAD_S) * RATE)
    return RigRun(
        far=far,
        sent=sent,
        echo=read_wav(workdir / "room" / "echo.wav")[skip:],
        near=read_wav(workdir / "room" / "near.wav")[skip:],
        stats=stats,
        wall_s=wall,
        glitches=read_glitches(workdir / "room")
        + stall_glitches(asdict(started_stats), asdict(stats)),
        void_takes=[],
    )


def wait_idle(sound: AlsaSound, timeout: float = 15.0) -> None:
    """Until the bridge has run its card and stopped it again, nothing needing
    sound, and then IDLE_S more (a phone idles for longer than that between calls)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = sound.stats()
        if stats.cycles > 0 and not stats.streaming:
            time.sleep(IDLE_S)
            return
        time.sleep(0.02)
    raise RuntimeError(f"the bridge never fell idle: {sound.stats()}")


def _lag(sent: np.ndarray, mic: np.ndarray) -> int:
    """How many samples `sent` runs behind room time (cross-correlation peak)."""
    n = min(len(sent), len(mic))
    if n == 0:
        return 0
    a, b = sent[:n], mic[:n]
    size = 2 * n
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    limit = 2 * RATE
    candidates = np.concatenate([corr[:limit], corr[-limit:]])
    index = int(np.argmax(np.abs(candidates)))
    return index if index < limit else index - 2 * limit


def _windows(signal_: np.ndarray, start: int, count: int) -> np.ndarray:
    size = int(WINDOW_S * RATE)
    levels = []
    for i in range(count):
        chunk = signal_[start + i * size : start + (i + 1) * size]
        levels.append(level_db(chunk) if len(chunk) == size else -200.0)
    return np.array(levels)


def analyse(run: RigRun, converged_after_s: float = 2.0) -> EchoFigures:
    # The near end passes any canceller; without it, the echo is what is sent.
    lag = _lag(run.sent, run.near) if np.any(run.near) else _lag(run.sent, run.echo)
    # Room time t is sent time t + lag.
    size = int(WINDOW_S * RATE)
    count = min(len(run.echo), len(run.sent) - max(lag, 0)) // size - 1
    offset = max(-lag, 0)
    count -= offset // size + 1
    echo_w = _windows(run.echo, offset, count)
    near_w = _windows(run.near, offset, count)
    sent_w = _windows(run.sent, offset + lag, count)
    # Seconds since the far end started talking (sent time).
    times = (offset + lag + np.arange(count) * size) / RATE
    single = (echo_w > ACTIVE_DB) & (near_w < ACTIVE_DB - 20)
    double = (echo_w > ACTIVE_DB) & (near_w > ACTIVE_DB + 10)
    settled = single & (times >= converged_after_s)
    echo_power = np.power(10, echo_w / 10)
    sent_power = np.power(10, sent_w / 10)
    erle = (
        10 * np.log10(echo_power[settled].mean() / max(sent_power[settled].mean(), 1e-20))
        if settled.any()
        else float("nan")
    )
    per_window = echo_w - sent_w
    single_idx = np.flatnonzero(single)

    def holds(level_db: float) -> float | None:
        """The first single-talk window from which the next ten hold `level_db` (median)."""
        for k, idx in enumerate(single_idx):
            following = per_window[single_idx[k : k + 10]]
            if len(following) >= 5 and np.median(following) >= level_db:
                return float(times[idx])
        return None

    near_att: float | None = None
    cut: float | None = None
    if double.any():
        near_att = float(
            10 * np.log10(np.power(10, near_w[double] / 10).mean())
            - 10 * np.log10(max(np.power(10, sent_w[double] / 10).mean(), 1e-20))
        )
        cut = float(np.mean((near_w[double] - sent_w[double]) > 10.0))
    return EchoFigures(
        erle_db=float(erle),
        converge_s=holds(20.0),
        target_s=holds(TARGET_ERLE_DB),
        near_attenuation_db=near_att,
        near_cut_share=cut,
        echo_off_level_db=float(10 * np.log10(echo_power[single].mean()))
        if single.any()
        else -200.0,
        lag_ms=lag * 1000 / RATE,
        erle_by_s=tuple(
            round(float(np.median(per_window[single & (times.astype(int) == second)])), 1)
            if (single & (times.astype(int) == second)).any()
            else float("nan")
            for second in range(int(times.max()) + 1 if count > 0 else 0)
        ),
    )
