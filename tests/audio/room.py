"""The virtual board's room: a loudspeaker that echoes into a microphone.

A real hardphone's microphone hears the person in front of it plus the echo
of its own loudspeaker. The room reproduces that over real ALSA PCMs, so the
firmware's pyalsaaudio path and its echo canceller run as on the Pi: it
captures what the phone plays (the monitor of the phone's speaker sink),
passes it through an echo path (a delay, then a diffuse tail decaying by
60 dB over `decay_ms`, at `gain_db`), adds a near-end talker from a WAV and a
little seeded noise, and plays the sum into the sink whose monitor is the
phone's microphone. It records what the phone played and each part of what
the microphone heard, sample-aligned in room time, for measurements.

The room's own latency (one ALSA period plus its playback prefill, nominally
ROOM_LATENCY_MS) counts towards the configured delay.

Run it beside a phone as its own process, so it never competes with the
phone for the GIL: `python -m tests.audio.room --speaker-pcm ... --mic-pcm ...`
(SIGTERM stops it and finalises the recordings).
"""

from __future__ import annotations

import argparse
import errno
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from phone.audio.alsa import REALTIME, realtime_plugin_threads

log = logging.getLogger(__name__)

RATE = 16000
# Short periods keep the room's own latency (read one period, then a queue of
# PREFILL_FRAMES) below the echo delays worth simulating.
FRAME_MS = 10
SAMPLES = RATE * FRAME_MS // 1000
PREFILL_FRAMES = 2
ROOM_LATENCY_MS = FRAME_MS * (1 + PREFILL_FRAMES)
FULL_SCALE = 32767.0
GLITCHES_FILE = "glitches.txt"


@dataclass(frozen=True)
class EchoPath:
    """Loudspeaker-to-microphone coupling: delay, decay (to -60 dB) and gain.

    `delay_ms` is the whole delay from the speaker's stream to the microphone's;
    the room's own latency (ROOM_LATENCY_MS) is part of it, so the impulse
    response delays by the rest.
    """

    delay_ms: float = 40.0
    decay_ms: float = 100.0
    gain_db: float = -6.0
    seed: int = 1

    def impulse_response(self) -> np.ndarray:
        """A delayed, exponentially decaying random tail with energy `gain_db`."""
        rng = np.random.default_rng(self.seed)
        delay = int(RATE * max(self.delay_ms - ROOM_LATENCY_MS, 0) / 1000)
        length = max(1, int(RATE * self.decay_ms / 1000))
        t = np.arange(length)
        tail = rng.standard_normal(length) * np.exp(-6.9 * t / length)
        tail *= 10 ** (self.gain_db / 20) / np.sqrt(np.sum(tail**2))
        return np.concatenate([np.zeros(delay), tail])


@dataclass(frozen=True)
class Talker:
    """The near-end talker: a 16 kHz mono WAV starting at `start_s` of room time."""

    wav: Path
    start_s: float = 0.0
    gain_db: float = 0.0
    loop: bool = False


def read_wav(path: Path) -> np.ndarray:
    """Samples of a 16 kHz mono S16 WAV as floats; ValueError for anything else."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{path}: need {RATE} Hz mono 16-bit")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(to_pcm(samples))


def to_pcm(samples: np.ndarray) -> bytes:
    return bytes(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())


def speech(text: str, voice: str = "en", seed: int = 1, seconds: float = 6.0) -> np.ndarray:
    """Speech at 16 kHz from espeak-ng, or a seeded speech-like signal when it is missing."""
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "speech.wav"
            subprocess.run(
                [espeak, "-v", voice, "-s", "150", "-w", str(out), text],
                check=True,
                capture_output=True,
                timeout=30,
            )
            with wave.open(str(out), "rb") as wav:
                rate = wav.getframerate()
                raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        positions = np.arange(0, len(raw) - 1, rate / RATE)
        resampled = np.interp(positions, np.arange(len(raw)), raw.astype(np.float64))
        peak = np.max(np.abs(resampled)) or 1.0
        return resampled * (0.5 * FULL_SCALE / peak)
    return _speech_like(seconds, seed)


def _speech_like(seconds: float, seed: int) -> np.ndarray:
    """Voiced syllables: a glottal-like pulse train with a wandering pitch (90-220 Hz),
    through two resonances that move per syllable, about 4 syllables a second,
    with pauses between phrases, plus a little breath noise."""
    rng = np.random.default_rng(seed)
    count = int(RATE * seconds)
    syllable = RATE // 4
    syllables = count // syllable + 1
    pitch = np.repeat(rng.uniform(90, 220, syllables), syllable)[:count]
    phase = np.cumsum(2 * np.pi * pitch / RATE)
    source = np.sign(np.sin(phase)) * (np.sin(phase) ** 8) + 0.3 * rng.standard_normal(count)
    out = np.zeros(count)
    for k in range(syllables):
        lo, hi = k * syllable, min((k + 1) * syllable, count)
        if lo >= hi:
            break
        piece = source[lo:hi]
        for formant in (rng.uniform(300, 900), rng.uniform(900, 2500)):
            r, w = 0.97, 2 * np.pi * formant / RATE
            b = [1.0 - r]
            a = [1.0, -2 * r * np.cos(w), r * r]
            y = np.zeros(len(piece))
            for n in range(len(piece)):
                y[n] = (
                    b[0] * piece[n]
                    - a[1] * (y[n - 1] if n else 0)
                    - a[2] * (y[n - 2] if n > 1 else 0)
                )
            out[lo:hi] += y
        out[lo:hi] *= np.hanning(hi - lo)
    phrases = np.repeat(rng.random(count // RATE + 1) > 0.25, RATE)[:count]
    out *= phrases
    peak = np.max(np.abs(out)) or 1.0
    return out * (0.5 * FULL_SCALE / peak)


def level_db(samples: np.ndarray) -> float:
    """Mean power in dB relative to full scale (-200 for digital silence)."""
    power = float(np.mean(np.square(samples))) if len(samples) else 0.0
    return 10 * np.log10(power / FULL_SCALE**2) if power > 0 else -200.0


class VirtualRoom:
    """Echo plus a near-end talker between two ALSA PCMs, on its own thread.

    `speaker_pcm` is a capture PCM that hears what the phone plays;
    `mic_pcm` is a playback PCM whose sound the phone captures.
    """

    def __init__(
        self,
        speaker_pcm: str,
        mic_pcm: str,
        echo: EchoPath | None = None,
        talker: Talker | None = None,
        noise_db: float = -70.0,
        record_dir: Path | None = None,
        realtime_priority: int | None = None,
    ) -> None:
        self.speaker_pcm = speaker_pcm
        self.mic_pcm = mic_pcm
        self.echo = echo or EchoPath()
        self.talker = talker
        self.noise_db = noise_db
        self.record_dir = record_dir
        self.realtime_priority = realtime_priority
        self._ir = self.echo.impulse_response()
        self._talk = read_wav(talker.wav) * 10 ** (talker.gain_db / 20) if talker else None
        self._rng = np.random.default_rng(self.echo.seed + 1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self.frames = 0
        self._played: list[np.ndarray] = []
        self._near: list[np.ndarray] = []
        self._echoes: list[np.ndarray] = []
        # Times (room time) the room's own timing broke: a stall of this process
        # or of the whole machine, which no real room has.
        self.glitches: list[str] = []

    def start(self) -> VirtualRoom:
        self._thread = threading.Thread(target=self._run, name="room", daemon=True)
        self._thread.start()
        return self

    def wait_running(self, timeout: float = 10.0) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.record_dir is not None:
            self.save(self.record_dir)

    def save(self, directory: Path) -> None:
        """Write played.wav (what the phone played), near.wav and echo.wav (mic parts),
        and glitches.txt (one line per break in the room's timing)."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, parts in (("played", self._played), ("near", self._near), ("echo", self._echoes)):
            write_wav(directory / f"{name}.wav", np.concatenate(parts) if parts else np.zeros(0))
        (directory / GLITCHES_FILE).write_text("".join(f"{line}\n" for line in self.glitches))

    def _glitch(self, what: str) -> None:
        log.warning("room %s", what)
        self.glitches.append(f"room {what} at {self.frames * FRAME_MS / 1000:.2f} s")

    def _near_frame(self, index: int) -> np.ndarray:
        if self._talk is None or self.talker is None:
            return np.zeros(SAMPLES)
        start = index * SAMPLES - int(self.talker.start_s * RATE)
        if start < 0 or len(self._talk) == 0:
            return np.zeros(SAMPLES)
        if self.talker.loop:
            idx = (start + np.arange(SAMPLES)) % len(self._talk)
            return np.asarray(self._talk[idx])
        chunk = self._talk[start : start + SAMPLES]
        return np.concatenate([chunk, np.zeros(SAMPLES - len(chunk))])

    def _record(self, played: np.ndarray, near: np.ndarray, echo: np.ndarray) -> None:
        self._played.append(played)
        self._near.append(near)
        self._echoes.append(echo)
        self.frames += 1

    def _skip_backlog(self, capture: Any, pending: bytearray) -> int:
        """Drop what the speaker played while the room was stalled; periods dropped.

        Echoing it late would lengthen the room's delay for good (as a stall
        cannot in a room). The recordings get silence at the microphone for it.
        """
        skipped = 0
        while len(pending) >= SAMPLES * 2 or capture.avail() >= SAMPLES:
            if len(pending) < SAMPLES * 2:
                count, data = capture.read()
                if count < 0:
                    continue
                pending += data
            played = np.frombuffer(bytes(pending[: SAMPLES * 2]), dtype="<i2").astype(float)
            del pending[: SAMPLES * 2]
            self._record(played, np.zeros(SAMPLES), np.zeros(SAMPLES))
            skipped += 1
        return skipped

    def _run(self) -> None:
        import alsaaudio

        REALTIME.request(self.realtime_priority, "room thread")

        try:
            capture = alsaaudio.PCM(
                type=alsaaudio.PCM_CAPTURE,
                device=self.speaker_pcm,
                rate=RATE,
                channels=1,
                format=alsaaudio.PCM_FORMAT_S16_LE,
                periodsize=SAMPLES,
                periods=4,
            )
            playback = alsaaudio.PCM(
                type=alsaaudio.PCM_PLAYBACK,
                device=self.mic_pcm,
                rate=RATE,
                channels=1,
                format=alsaaudio.PCM_FORMAT_S16_LE,
                periodsize=SAMPLES,
                periods=4,
            )
        except alsaaudio.ALSAAudioError as exc:
            log.error("room cannot open its PCMs: %s", exc)
            self.error = exc
            self._ready.set()
            return
        realtime_plugin_threads(self.realtime_priority)
        tail = np.zeros(len(self._ir) - 1)
        noise_rms = FULL_SCALE * 10 ** (self.noise_db / 20)
        pending = bytearray()
        primed = False
        log.info(
            "room running: %s -> echo %.0f ms/%.0f ms/%.1f dB -> %s",
            self.speaker_pcm,
            self.echo.delay_ms,
            self.echo.decay_ms,
            self.echo.gain_db,
            self.mic_pcm,
        )
        try:
            while not self._stop.is_set():
                count, data = capture.read()
                if count < 0:
                    self._glitch(f"capture overrun ({count})")
                    continue
                if not primed:
                    # The first capture period can take seconds (PulseAudio); only
                    # then start the playback queue, or it underruns meanwhile.
                    for _ in range(PREFILL_FRAMES):
                        playback.write(bytes(SAMPLES * 2))
                    primed = True
                pending += data
                if len(pending) < SAMPLES * 2:
                    continue
                played = np.frombuffer(bytes(pending[: SAMPLES * 2]), dtype="<i2").astype(float)
                del pending[: SAMPLES * 2]
                full = np.convolve(played, self._ir)
                full[: len(tail)] += tail
                echo = full[:SAMPLES]
                tail = full[SAMPLES:]
                near = self._near_frame(self.frames)
                mic = echo + near + self._rng.standard_normal(SAMPLES) * noise_rms
                underrun = playback.write(to_pcm(mic)) == -errno.EPIPE
                if underrun:
                    # Restart as at the start, prefill first, so the echo keeps its delay.
                    for _ in range(PREFILL_FRAMES):
                        playback.write(bytes(SAMPLES * 2))
                    playback.write(to_pcm(mic))
                self._record(played, near, echo)
                if underrun:
                    skipped = self._skip_backlog(capture, pending)
                    self._glitch(f"playback underrun: {skipped * FRAME_MS} ms of echo skipped")
                self._ready.set()
        finally:
            capture.close()
            playback.close()


def room_command(
    speaker_pcm: str,
    mic_pcm: str,
    path: EchoPath,
    noise_db: float,
    talker: Path | None = None,
    record_dir: Path | None = None,
    realtime_priority: int | None = None,
) -> list[str]:
    """The command line that runs a room as its own process (`main` below)."""
    command = [
        sys.executable, "-m", "tests.audio.room",
        "--speaker-pcm", speaker_pcm, "--mic-pcm", mic_pcm,
        "--delay-ms", str(path.delay_ms), "--decay-ms", str(path.decay_ms),
        "--gain-db", str(path.gain_db), "--noise-db", str(noise_db), "--seed", str(path.seed),
    ]  # fmt: skip
    if talker is not None:
        command += ["--talker", str(talker)]
    if record_dir is not None:
        command += ["--record-dir", str(record_dir)]
    if realtime_priority is not None:
        command += ["--realtime-priority", str(realtime_priority)]
    return command


def read_glitches(record_dir: Path) -> list[str]:
    """The breaks in a finished room's timing, from its record directory."""
    return (record_dir / GLITCHES_FILE).read_text().splitlines()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speaker-pcm", required=True, help="capture PCM hearing the speaker")
    parser.add_argument("--mic-pcm", required=True, help="playback PCM feeding the microphone")
    parser.add_argument("--delay-ms", type=float, default=40.0)
    parser.add_argument("--decay-ms", type=float, default=100.0)
    parser.add_argument("--gain-db", type=float, default=-6.0)
    parser.add_argument("--noise-db", type=float, default=-70.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--talker", type=Path, help="near-end talker, 16 kHz mono WAV")
    parser.add_argument("--talker-start", type=float, default=0.0)
    parser.add_argument("--talker-gain-db", type=float, default=0.0)
    parser.add_argument("--talker-loop", action="store_true")
    parser.add_argument("--record-dir", type=Path)
    parser.add_argument("--realtime-priority", type=int, help="SCHED_FIFO priority (1-99)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="room %(levelname)s %(message)s")
    talker = (
        Talker(args.talker, args.talker_start, args.talker_gain_db, args.talker_loop)
        if args.talker
        else None
    )
    room = VirtualRoom(
        args.speaker_pcm,
        args.mic_pcm,
        EchoPath(args.delay_ms, args.decay_ms, args.gain_db, args.seed),
        talker,
        args.noise_db,
        args.record_dir,
        args.realtime_priority,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    room.start()
    if room.wait_running():
        print("room running", flush=True)
    while not done.wait(0.2):
        if room.error is not None:
            break
    room.stop()
    if room.error is not None:
        raise SystemExit(f"room failed: {room.error}")


if __name__ == "__main__":
    main()
