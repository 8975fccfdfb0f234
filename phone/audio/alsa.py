"""The phone's microphone and speaker on ALSA, as one pjmedia port.

pjsua2 here runs on its null sound device (the wheel has no sound support, and
the bridge keeps echo cancellation in our hands), so sound reaches ALSA
through this module:

    ALSA capture ─┐                     ┌─> capture ring ─> onFrameRequested ─> calls
                  ├─ ALSA thread: AEC ──┤
    ALSA playback <┘ (+ tones mixed in) └── playback ring <─ onFrameReceived <─ calls

One thread runs the card full duplex: it blocks on one capture period, then
writes one playback period, so both directions tick on the card's clock and
the playback queue stays at its prefill. The echo canceller runs in that
thread with a reference aligned from what ALSA itself reports: the samples
still queued for playback and the samples captured but not yet read give the
offset between the capture and playback streams, so the reference handed to
`pjmedia_echo_cancel` is the playback that was at the speaker when the
captured frame was at the microphone. That offset is the median of a second
of readings, then held: the readings jitter by a period (PulseAudio's by
more), and following them made the reference jump under the canceller. It
is measured afresh after every xrun.

What ALSA reports leaves out the air between speaker and microphone and any
buffering a driver hides (ALSA's `pulse` plugin hides PulseAudio's server
side), and pjmedia's WebRTC canceller only covers 48 ms. So the bridge also
measures the whole lag from the sound itself while the far end talks
(`phone.audio.delay`) and hands the canceller the reference `ECHO_LEAD_MS`
before the echo, from the first estimate on, on every call. A changed lag
is taken only when two estimates in a row agree on it. Tones are no probe:
the estimator skips their frames. Whenever the
reference moves, the canceller relearns the last REPLAY_MS of capture
against it, so what it learned against the old place (ALSA's offset, on a
first call) does not cost seconds of echo. What the measurement
adds to ALSA's offset is kept across xruns and device reopenings. The two
rings then carry the frames across to pjmedia's clock, which runs on system
time and drifts; `PcmRing` absorbs that. pjmedia's clock runs only while the
phone has a call (pjsua closes its idle sound device): while the card runs
without it (a tone), the rings are left alone rather than counted as
overrun, and what the capture ring held is dropped when the clock starts
again.

When nothing needs sound (pjmedia's clock stopped, no tone) for
`IDLE_AFTER_S`, the thread closes both PCMs, opens them again without
starting them, and blocks until the clock starts or a tone is set: an idle
phone does no periodic audio work, as a desk phone's sound device is closed
between calls. Why reopened, not stopped (ALSA's `pulse` plugin, measured):
a dropped PCM makes a new PulseAudio stream when it starts again, and its
second period came 1.9 s late; a paused one (a cork) went on at once but
with 80-100 ms more latency that then moved by 10 ms steps for seconds,
which cost the next call 2-4 s of echo; a fresh PCM left open for two
seconds starts at once, with the latency of a first stream (on a card's own
driver, opening is a few ms either way, and an unstarted PCM costs
nothing). What the canceller learned and the measured part of the lag stay
with the bridge: ALSA's offset is measured afresh, so the next call starts
with the reference where the last one left it, and the first estimate on
the restarted card places it again and the canceller relearns there, moved
or not (see `_Alignment.measured`). A call whose sound
starts the card (no ring or ringback before it) reaches the speaker after
the stream's first STREAM_SETTLE_MS. Devices that vanished while idle are
found at the reopen.
"""

from __future__ import annotations

import array
import ctypes
import errno
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from statistics import median
from typing import Any

import alsaaudio
import pjsua2 as pj

from phone.audio.bridge_port import BridgePort
from phone.audio.delay import DelayEstimate, DelayEstimator
from phone.audio.echo import EchoCanceller, EchoConfig
from phone.audio.ring import PcmRing, RingStats
from phone.pjsua_callback import pjsua_callback

log = logging.getLogger(__name__)

RATE = 16000
SAMPLE_BYTES = 2
ALIGN_WINDOW = 50  # cycles of ALSA offset readings whose median sets the offset
# The longest lag from speaker to microphone the bridge measures: device
# buffers (up to ~200 ms) plus a room's delay.
MAX_ECHO_LAG_MS = 400
# Where the measured echo is put in the canceller's 48 ms filter: late enough
# that the reference comes first even when an estimate is 10 ms late (2 ms
# resolution, a tail dragging the peak), early enough to leave the tail room.
# Measured on speech in rooms of 20-120 ms: a lead of 4-16 ms gives 50-56 dB
# (16 ms converges fastest), 0 ms about 40 dB, a reference 8 ms after the
# echo about 25 dB.
ECHO_LEAD_MS = 16
# A new lag is taken (after two estimates agree on it) only when it is this
# much later than the one in use (the echo would start before the reference:
# estimates come 8-12 ms late at times, a pitch period, which is no move),
# or this much earlier (the lead would eat a tail's worth of filter). Each
# move resets the canceller, which then relearns the last REPLAY_MS.
LATER_TOLERANCE_MS = ECHO_LEAD_MS - 2
EARLIER_TOLERANCE_MS = 16
# What the canceller relearns from when the reference moves: the capture of
# the last REPLAY_MS, replayed against the moved reference.
REPLAY_MS = 2000
REFERENCE_HISTORY_MS = REPLAY_MS + MAX_ECHO_LAG_MS + 200
STOP_TIMEOUT_S = 5.0  # how long close() waits for the audio thread
# How long nothing must need sound before the card is stopped: as long as
# pjsua waits before it closes its idle sound device, so a ring tone that ends
# as the call's clock starts (answering), or a clock that stops for a moment,
# does not stop and restart the card.
IDLE_AFTER_S = 1.0
# A started stream plays what pjmedia sends only after this long (tones at
# once): a call that began on the card's first cycle (a stopped card, no ring
# before it) reached 40 dB after 3.5-5.2 s in the rig's 60 ms room, with the
# card started 100 ms before the call's sound 1.1-1.3 s (PulseAudio's streams
# settle; leaving those 100 ms out of the lag measurement and the relearning
# alone gave 2.7-2.9 s). A call that follows its ring or ringback loses nothing.
STREAM_SETTLE_MS = 100
PLUGIN_THREAD = "threaded-ml"  # the name PulseAudio's client library gives its thread


class AudioDeviceError(RuntimeError):
    """An ALSA device is missing, busy or failed; `device` names it."""

    def __init__(self, device: str, reason: str) -> None:
        super().__init__(f"audio device {device!r}: {reason}")
        self.device = device
        self.reason = reason


class AudioState(StrEnum):
    CLOSED = "closed"
    WAITING_FOR_DEVICE = "waiting-for-device"
    RUNNING = "running"


@dataclass(frozen=True)
class AudioConfig:
    """The board's ALSA names and the bridge's timing.

    `playback_prefill_frames` is the playback queue the duplex loop keeps
    (latency against underruns: with two 20 ms frames a loaded machine
    underran once in a few calls, and each underrun moves the echo under the
    canceller for seconds); `ring_frames` sizes the rings between the
    ALSA and pjmedia clocks, which aim to hold `ring_target_frames`.
    `realtime_priority` (1-99) runs the audio thread SCHED_FIFO, as audio
    threads usually are; it needs CAP_SYS_NICE or an rtprio limit, and
    without them the thread runs at normal priority (logged once). Under
    load a normal-priority thread came late enough for PulseAudio to
    underrun, which moves the echo under the canceller. None: never ask.
    """

    capture_pcm: str
    playback_pcm: str
    frame_ms: int = 20
    periods: int = 4
    playback_prefill_frames: int = 3
    ring_frames: int = 10
    ring_target_frames: float = 2.0
    echo: EchoConfig = field(default_factory=EchoConfig)
    retry_s: float = 2.0
    realtime_priority: int | None = 10

    def __post_init__(self) -> None:
        if self.frame_ms not in (10, 20):
            raise ValueError(f"frame_ms must be 10 or 20, not {self.frame_ms}")


@dataclass(frozen=True)
class AudioStats:
    """Counters since the bridge was created.

    A deadline miss is a frame that did not reach the device in time: an ALSA
    capture overrun, a playback underrun, or a late cycle (one whose work,
    not counting time blocked in ALSA, took longer than a frame). Ring over-
    and underruns are on the pjmedia side; drift corrections are the single
    samples the rings dropped or inserted. `cpu_seconds` is the thread CPU
    time of the audio thread plus the port's callbacks. `streaming`: the card
    runs now (it is stopped while nothing needs sound; `state` stays RUNNING).
    """

    state: AudioState
    aec: bool
    aec_backend: str
    cycles: int
    deadline_misses: int
    late_cycles: int
    capture_overruns: int
    playback_underruns: int
    capture: RingStats
    playback: RingStats
    realignments: int
    alignment_ms: float | None
    streaming: bool
    pj_frames: int
    cpu_seconds: float
    last_error: str | None

    @property
    def drift_corrections(self) -> int:
        return self.capture.drift_corrections + self.playback.drift_corrections


StateListener = Callable[[AudioState, AudioDeviceError | None], None]


def _mix(a: bytes, b: bytes) -> bytes:
    """Saturating sum of two S16 frames (a tone over the call's audio)."""
    x = array.array("h", a)
    y = array.array("h", b)
    return array.array(
        "h", (max(-32768, min(32767, p + q)) for p, q in zip(x, y, strict=True))
    ).tobytes()


class _ReferenceHistory:
    """What was written to playback, by absolute sample index, for the AEC reference."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._buf = bytearray()
        self._start = 0  # absolute index of _buf[0]

    @property
    def end(self) -> int:
        return self._start + len(self._buf) // SAMPLE_BYTES

    def append(self, pcm: bytes) -> None:
        self._buf += pcm
        excess = len(self._buf) // SAMPLE_BYTES - self.capacity
        if excess > 0:
            del self._buf[: excess * SAMPLE_BYTES]
            self._start += excess

    def slice(self, start: int, count: int) -> bytes:
        """Samples [start, start+count), zeros where nothing was (or is yet) known."""
        out = bytearray(count * SAMPLE_BYTES)
        lo = max(start, self._start)
        hi = min(start + count, self.end)
        if lo < hi:
            src = (lo - self._start) * SAMPLE_BYTES
            dst = (lo - start) * SAMPLE_BYTES
            size = (hi - lo) * SAMPLE_BYTES
            out[dst : dst + size] = self._buf[src : src + size]
        return bytes(out)


class _Alignment:
    """Where one stream's echo reference comes from: ALSA's offset, then the measured lag.

    All in samples, capture position minus playback position. `residual` is
    what the measured lag adds to ALSA's offset (the air, hidden buffers);
    it outlives the stream, so a stream after an xrun starts where the last
    one ended.

    `restarted`: the card was started afresh (a call or a tone after an idle
    spell), and the stream's first estimate is taken even where it agrees
    with the residual, so the canceller relearns at once (see `measured`).
    """

    def __init__(self, residual: int | None, restarted: bool = False) -> None:
        self.readings: deque[int] = deque(maxlen=ALIGN_WINDOW)
        self.alsa: int | None = None  # held once a window of readings is in
        self.residual = residual
        self.lag: int | None = None  # measured on this stream
        self._candidate: int | None = None
        self._restarted = restarted
        self._lead = RATE * ECHO_LEAD_MS // 1000

    def reading(self, offset: int) -> None:
        if self.alsa is None:
            self.readings.append(offset)
            if len(self.readings) == ALIGN_WINDOW:
                self.alsa = int(median(self.readings))
                log.debug("ALSA offset held: %.1f ms", self.alsa * 1000 / RATE)
                if self.lag is not None:
                    self.residual = self.lag - self.alsa

    def _alsa_offset(self) -> int:
        return self.alsa if self.alsa is not None else int(median(self.readings))

    def _known_lag(self) -> int | None:
        if self.lag is not None:
            return self.lag
        if self.residual is not None and self.readings:
            return self._alsa_offset() + self.residual
        return None

    def offset(self) -> int:
        """Samples back from a captured sample to its reference in the playback history."""
        known = self._known_lag()
        return known - self._lead if known is not None else self._alsa_offset()

    def measured(self, estimate: DelayEstimate) -> bool:
        """Take in an estimate; True when the canceller is to relearn against it.

        The first on a restarted card is always taken: across the restart
        the lag moves by what ALSA's offset does not show (on ALSA's pulse
        plugin by up to 14 ms, PulseAudio's side), so the residual is a
        guess; and the canceller kept from the last call gave 13-16 dB in
        the call's first second and 16-27 dB in its second even where the
        lag had not moved. Relearning at that estimate (about 1 s in) brought
        40 dB at 1.1-1.5 s, where the kept canceller took 1.4-2.0 s.
        """
        known = self._known_lag()
        first_after_restart = self._restarted and self.lag is None
        if known is not None and _same_lag(estimate.lag, known) and not first_after_restart:
            self.lag, self._candidate = known, None
            return False
        if self.lag is not None and (
            self._candidate is None or not _same_lag(estimate.lag, self._candidate)
        ):
            # Measured on this stream already: wait for a second estimate to agree.
            # (The first on a stream is taken at once: after an xrun the lag
            # carried over is a guess, and PulseAudio moves it by 300 ms.)
            self._candidate = estimate.lag
            return False
        self.lag, self._candidate = estimate.lag, None
        self.residual = self.lag - self._alsa_offset()
        return True


def _same_lag(measured: int, known: int) -> bool:
    """Whether a measured lag leaves the echo well placed with the reference of `known`."""
    later, earlier = LATER_TOLERANCE_MS * RATE // 1000, EARLIER_TOLERANCE_MS * RATE // 1000
    return -earlier <= measured - known <= later


class _Duplex:
    """The open ALSA capture and playback PCMs of one stream."""

    def __init__(self, config: AudioConfig, samples: int) -> None:
        self.samples = samples
        self.capture = self._open(alsaaudio.PCM_CAPTURE, config.capture_pcm, config)
        try:
            self.playback = self._open(alsaaudio.PCM_PLAYBACK, config.playback_pcm, config)
        except AudioDeviceError:
            self.capture.close()
            raise
        self.buffer_samples = int(self.playback.info().get("buffer_size", samples * config.periods))

    def _open(self, kind: int, device: str, config: AudioConfig) -> Any:
        try:
            return alsaaudio.PCM(
                type=kind,
                mode=alsaaudio.PCM_NORMAL,
                device=device,
                rate=RATE,
                channels=1,
                format=alsaaudio.PCM_FORMAT_S16_LE,
                periodsize=self.samples,
                periods=config.periods,
            )
        except alsaaudio.ALSAAudioError as exc:
            raise AudioDeviceError(device, str(exc)) from exc

    def close(self) -> None:
        for pcm in (self.capture, self.playback):
            try:
                pcm.close()
            except alsaaudio.ALSAAudioError as exc:
                log.debug("closing an ALSA PCM: %s", exc)


class AlsaSound:
    """A board's mic and speaker on ALSA with echo cancellation, as one pjmedia port.

    Create it after the pjsua2 Endpoint (it makes a conference-bridge port),
    connect calls with `sound.port.startTransmit(call_media)` and
    `call_media.startTransmit(sound.port)`. `open()` opens the devices now or
    raises `AudioDeviceError`; `start()` keeps trying in the background until
    the devices appear (and again if they vanish), telling `on_state`. The
    port works whether or not the devices are open: it sends silence and drops
    what it is given, so calls proceed without sound.

    Who owns what, and the order they end in (`destroy()`, which must come
    before `Endpoint.libDestroy()`):

    1. The audio thread owns the ALSA PCMs, and is the only caller of the
       echo canceller while it runs. `close()` stops it and waits until it
       has exited; one that does not exit is left running, and nothing it
       uses is freed.
    2. This object owns the bridge port (`port`): `destroy()` ends it with
       `BridgePort.destroy()` while it is whole, so pjmedia's clock thread
       never calls into a port being freed. Whoever connected calls to it
       only borrows it, and drops it after `destroy()`.
    3. Then the echo canceller (pjmedia state and pool, from pjsua's pool
       factory) is freed, once no thread can be inside it.

    The rings and counters are plain Python, shared by the two threads.
    """

    def __init__(
        self,
        config: AudioConfig,
        on_state: StateListener | None = None,
    ) -> None:
        self.config = config
        self._on_state = on_state
        self.samples = RATE * config.frame_ms // 1000
        self.frame_bytes = self.samples * SAMPLE_BYTES
        capacity = self.samples * config.ring_frames
        target = int(self.samples * config.ring_target_frames)
        # PulseAudio and some cards deliver two periods at once: a dead band of
        # a frame keeps that from looking like drift.
        tolerance = self.samples
        resync = self.samples * 3
        self.capture_ring = PcmRing(capacity, target, tolerance, resync)
        self.playback_ring = PcmRing(capacity, target, tolerance, resync)
        self.echo = EchoCanceller(config.echo, clock_rate=RATE, frame_ms=config.frame_ms)
        self.muted = False
        self._tone: Iterator[bytes] | None = None
        self._tone_lock = threading.Lock()
        self._state = AudioState.CLOSED
        self._last_error: AudioDeviceError | None = None
        self._stop = threading.Event()
        # Set when something may need sound again: pjmedia's clock started, a
        # tone was set, or close() wants the thread. The idle thread blocks on it.
        self._wanted = threading.Event()
        self._streaming = False
        self._thread: threading.Thread | None = None
        self._counters_lock = threading.Lock()
        self._cycles = 0
        self._late = 0
        self._overruns = 0
        self._underruns = 0
        self._realignments = 0
        self._alignment: int | None = None
        self._residual: int | None = None  # measured lag minus ALSA's offset
        self._cpu = 0.0
        self._port: _AlsaPort | None = _AlsaPort(self)

    # -- public ---------------------------------------------------------
    @property
    def port(self) -> Any:
        """The pj.AudioMedia to connect calls to."""
        return self._port

    @property
    def capture_media(self) -> Any:
        """What a call receives from (the microphone): the port, as for `PjsuaSound`."""
        return self._port

    @property
    def playback_media(self) -> Any:
        """What a call transmits to (the speaker): the same port."""
        return self._port

    @property
    def state(self) -> AudioState:
        return self._state

    @property
    def last_error(self) -> AudioDeviceError | None:
        return self._last_error

    def open(self) -> None:
        """Open both devices and start the audio thread; AudioDeviceError if they fail.

        Once open, a device lost later is waited for and reopened as by `start`.
        """
        if self._thread is not None:
            return
        duplex = self._open_duplex()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(duplex,), name="alsa-duplex", daemon=True
        )
        self._thread.start()

    def start(self) -> None:
        """Open the devices in the background, retrying every `retry_s` until they work."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(None,), name="alsa-duplex", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the audio thread and release the devices (the port stays usable).

        Waits for the thread to exit (a cycle is one period; opening a device
        can take longer). A thread still blocked in ALSA after
        `STOP_TIMEOUT_S` is reported and left alone, still owning its PCMs.
        """
        self._stop.set()
        self._wanted.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=STOP_TIMEOUT_S)
            if thread.is_alive():
                log.error("audio thread still blocked in ALSA after %.0f s", STOP_TIMEOUT_S)
                return
            self._thread = None
        self._set_state(AudioState.CLOSED, None)

    def destroy(self) -> None:
        """Stop the thread, end the bridge port, then free the echo canceller."""
        self.close()
        port, self._port = self._port, None
        if port is not None:
            port.destroy()
        if self._thread is None:
            self.echo.close()
        else:
            log.error("echo canceller kept: the audio thread that uses it did not stop")

    def play_tone(self, frames: Iterator[bytes] | None) -> None:
        """Mix `frames` (S16 frames of this bridge's size) into the speaker; None stops."""
        with self._tone_lock:
            self._tone = frames
        if frames is not None:
            self._wanted.set()  # the card may be stopped: start it

    def stats(self) -> AudioStats:
        echo = self.echo.stats()
        port = self._port
        with self._counters_lock:
            return AudioStats(
                state=self._state,
                aec=self.echo.active,
                aec_backend=echo.backend,
                cycles=self._cycles,
                deadline_misses=self._late + self._overruns + self._underruns,
                late_cycles=self._late,
                capture_overruns=self._overruns,
                playback_underruns=self._underruns,
                capture=self.capture_ring.stats(),
                playback=self.playback_ring.stats(),
                realignments=self._realignments,
                alignment_ms=None if self._alignment is None else self._alignment * 1000 / RATE,
                streaming=self._streaming,
                pj_frames=port.frames if port is not None else 0,
                cpu_seconds=self._cpu + (port.cpu if port is not None else 0.0),
                last_error=str(self._last_error) if self._last_error else None,
            )

    # -- audio thread ---------------------------------------------------
    def _open_duplex(self) -> _Duplex:
        try:
            duplex = _Duplex(self.config, self.samples)
        except AudioDeviceError as exc:
            self._set_state(AudioState.WAITING_FOR_DEVICE, exc)
            raise
        realtime_plugin_threads(self.config.realtime_priority)
        self._set_state(AudioState.RUNNING, None)
        return duplex

    def _run(self, duplex: _Duplex | None) -> None:
        REALTIME.request(self.config.realtime_priority, "audio thread")
        reported: str | None = None  # log a missing device once, not every retry
        announce = True  # log the first stream on devices that were missing or new
        idle = False  # the devices are open and not started: wait until sound is needed
        while not self._stop.is_set():
            if duplex is None:
                try:
                    duplex = self._open_duplex()
                except AudioDeviceError as exc:
                    if str(exc) != reported:
                        log.warning("%s; retrying every %.1f s", exc, self.config.retry_s)
                        reported = str(exc)
                    announce, idle = True, False
                    self._stop.wait(self.config.retry_s)
                    continue
                reported = None
            if idle:
                log.debug("audio idle: devices open, not started until a call or a tone")
                self._wanted.wait()
                idle = False
                continue
            try:
                self._stream(duplex, announce)
                announce, idle = False, True
            except AudioDeviceError as exc:
                # Lost while running (unplugged, server gone): wait for it again.
                log.error("%s", exc)
                self._set_state(AudioState.WAITING_FOR_DEVICE, exc)
                announce = True
            # Closed and opened afresh, even to idle: see the module docstring.
            duplex.close()
            duplex = None
        if duplex is not None:
            duplex.close()

    def _stream(self, duplex: _Duplex, announce: bool) -> None:
        """The duplex loop: one capture period in, one playback period out, per
        cycle, until nothing has needed sound for IDLE_AFTER_S (or close())."""
        history = _ReferenceHistory(RATE * REFERENCE_HISTORY_MS // 1000)
        pending = bytearray()
        self._alignment = None
        silence = bytes(self.frame_bytes)
        # The first capture period can take a second or more (PulseAudio): start
        # playback only once capture flows, so the prefill is not drained meanwhile.
        first = self._read(duplex, pending)
        first = self._drain_backlog(duplex, pending, first)
        self.playback_ring.clear()
        self.capture_ring.clear()
        port = self._port  # read once: destroy() may drop it meanwhile
        self._streaming = True
        for _ in range(self.config.playback_prefill_frames):
            self._write(duplex, silence)
            history.append(silence)
        (log.info if announce else log.debug)(
            "audio running: capture %r, playback %r, %d ms frames",
            self.config.capture_pcm,
            self.config.playback_pcm,
            self.config.frame_ms,
        )
        try:
            self._duplex_loop(duplex, port, first, pending, history, silence)
        finally:
            self._streaming = False
            if port is not None:
                port.streaming = False

    def _duplex_loop(
        self,
        duplex: _Duplex,
        port: _AlsaPort | None,
        frame: bytes,
        pending: bytearray,
        history: _ReferenceHistory,
        silence: bytes,
    ) -> None:
        samples, period = self.samples, self.config.frame_ms / 1000
        alignment = _Alignment(self._residual, restarted=True)
        estimator = DelayEstimator(RATE, MAX_ECHO_LAG_MS) if self.echo.active else None
        read_total = 0
        xruns = self._overruns + self._underruns
        # (capture index, frame) of the last REPLAY_MS, for the canceller to relearn
        captured: deque[tuple[int, bytes]] = deque(maxlen=REPLAY_MS // self.config.frame_ms)
        needed_at = time.monotonic()  # the last cycle that had a clock or a tone
        settling = STREAM_SETTLE_MS // self.config.frame_ms  # cycles before the speaker's frames
        while True:
            started = time.perf_counter()
            cpu_started = time.thread_time()
            captured_at = read_total
            read_total += samples
            clocked = port is not None and port.clocked()
            playback = self.playback_ring.read(samples) if clocked else silence
            with self._tone_lock:
                tone = next(self._tone, None) if self._tone is not None else None
                if tone is None:
                    self._tone = None
            if tone is not None:
                playback = _mix(playback, tone)
            if clocked or tone is not None:
                needed_at = time.monotonic()
            settling -= 1
            if settling == 0 and port is not None:
                port.streaming = True  # pjmedia's frames reach the speaker from now on
            busy = time.perf_counter() - started
            self._write(duplex, playback)
            resumed = time.perf_counter()
            history.append(playback)
            if self._overruns + self._underruns != xruns:
                # An xrun moved one stream against the other: measure afresh.
                xruns = self._overruns + self._underruns
                alignment = _Alignment(alignment.residual)
                captured.clear()  # captured against the streams as they were
                if estimator is not None:
                    estimator.restart()
            alignment.reading(self._stream_offset(duplex, read_total, history.end, len(pending)))
            relearn = False
            if estimator is not None and tone is None:
                # Not over a tone: a steady pitch's rises correlate at many
                # lags, and the earliest taken was 20 ms short of the echo
                # (a ringback, then the call's speech), so the call after it
                # began with the reference off.
                estimator.playback(history.end - samples, playback)
                estimate = estimator.capture(captured_at, frame)
                relearn = estimate is not None and self._measured(alignment, estimate)
            self._alignment, self._residual = alignment.offset(), alignment.residual
            reference = history.slice(captured_at - self._alignment, samples)
            out = self.echo.cancel(frame, reference)
            captured.append((captured_at, frame))
            if clocked:
                self.capture_ring.write(silence if self.muted else out)
            if relearn:
                # Relearn the last REPLAY_MS, this frame included, against the
                # reference as measured; after the write, so pjmedia's side of the
                # ring does not wait for it (about 7 ms).
                self.echo.relearn(
                    (past, history.slice(index - self._alignment, samples))
                    for index, past in captured
                )
            # Time spent working, not blocked in ALSA: over a period means the
            # loop cannot keep up, whatever the device's buffering hides.
            elapsed = busy + time.perf_counter() - resumed
            with self._counters_lock:
                self._cycles += 1
                self._cpu += time.thread_time() - cpu_started
                if elapsed > period:
                    self._late += 1
            if self._stop.is_set() or (
                time.monotonic() - needed_at > IDLE_AFTER_S and self._falls_idle(port)
            ):
                return
            frame = self._read(duplex, pending)

    def _falls_idle(self, port: _AlsaPort | None) -> bool:
        """Whether the card may stop: still nothing needs sound once `_wanted`
        is cleared (a clock or tone starting after this sets it again)."""
        self._wanted.clear()
        clocked = port is not None and port.clocked()
        with self._tone_lock:
            return not clocked and self._tone is None

    def _measured(self, alignment: _Alignment, estimate: DelayEstimate) -> bool:
        """Take in an estimate; True when the canceller is to relearn against it."""
        first = alignment.residual is None
        before = alignment.offset()
        log.debug(
            "echo delay estimate: %.1f ms (correlation %.2f)",
            estimate.lag * 1000 / RATE,
            estimate.correlation,
        )
        if not alignment.measured(estimate):
            return False
        if first:
            log.info(
                "echo delay measured: %.1f ms speaker to microphone (correlation %.2f)",
                estimate.lag * 1000 / RATE,
                estimate.correlation,
            )
            return True
        if alignment.offset() == before:
            log.debug("echo delay unchanged across the card's restart: relearning in place")
            return True
        log.info(
            "echo reference realigned: %.1f ms -> %.1f ms",
            before * 1000 / RATE,
            alignment.offset() * 1000 / RATE,
        )
        with self._counters_lock:
            self._realignments += 1
        return True

    def _drain_backlog(self, duplex: _Duplex, pending: bytearray, frame: bytes) -> bytes:
        """Skip capture periods queued while the stream started; keep the newest."""
        try:
            while int(duplex.capture.avail()) >= self.samples:
                frame = self._read(duplex, pending)
        except alsaaudio.ALSAAudioError as exc:
            raise AudioDeviceError(self.config.capture_pcm, str(exc)) from exc
        return frame

    def _read(self, duplex: _Duplex, pending: bytearray) -> bytes:
        while len(pending) < self.frame_bytes:
            try:
                count, data = duplex.capture.read()
            except alsaaudio.ALSAAudioError as exc:
                raise AudioDeviceError(self.config.capture_pcm, str(exc)) from exc
            if count == -errno.EPIPE:
                with self._counters_lock:
                    self._overruns += 1
                continue
            if count < 0:
                raise AudioDeviceError(self.config.capture_pcm, f"read failed: {count}")
            pending += data
        frame = bytes(pending[: self.frame_bytes])
        del pending[: self.frame_bytes]
        return frame

    def _write(self, duplex: _Duplex, pcm: bytes) -> None:
        for _ in range(2):
            try:
                written = duplex.playback.write(pcm)
            except alsaaudio.ALSAAudioError as exc:
                raise AudioDeviceError(self.config.playback_pcm, str(exc)) from exc
            if written != -errno.EPIPE:
                if written < 0:
                    raise AudioDeviceError(self.config.playback_pcm, f"write failed: {written}")
                return
            # Underrun: ALSA re-prepared the stream; the frame was not taken.
            with self._counters_lock:
                self._underruns += 1

    def _stream_offset(
        self, duplex: _Duplex, read_total: int, written_total: int, unread: int
    ) -> int:
        """Capture position minus playback position, both at this instant, in samples.

        The playback position is what was written minus what is still queued;
        the capture position is what was read plus what waits to be read.
        """
        try:
            queued = duplex.buffer_samples - int(duplex.playback.avail())
            waiting = int(duplex.capture.avail())
        except alsaaudio.ALSAAudioError:
            queued, waiting = self.config.playback_prefill_frames * self.samples, 0
        queued = max(0, min(queued, duplex.buffer_samples))
        waiting = max(0, waiting)
        return (read_total + unread // SAMPLE_BYTES + waiting) - (written_total - queued)

    def _set_state(self, state: AudioState, error: AudioDeviceError | None) -> None:
        changed = state is not self._state or (error is not None and error != self._last_error)
        self._state = state
        if error is not None:
            self._last_error = error
        if changed and self._on_state is not None:
            self._on_state(state, error)


class RealtimePriority:
    """Asks for SCHED_FIFO for audio threads, until the first refusal.

    Where real-time priority is refused (no CAP_SYS_NICE, no rtprio limit) it
    is refused for every thread after: pjsua brings a new clock thread with
    each call, and ALSA's pulse plugin a thread with each PCM. So the first
    refusal is logged, and no thread is asked for again in this process.
    `setter` has `os.sched_setscheduler`'s signature (tests inject one).
    """

    def __init__(self, setter: Callable[[int, int, Any], None] = os.sched_setscheduler) -> None:
        self._set = setter
        self._lock = threading.Lock()  # the threads of the audio path ask at once
        self.refused: str | None = None

    def request(self, priority: int | None, thread: str, tid: int = 0) -> None:
        """Run a thread (0: the calling one) SCHED_FIFO at `priority` (None: leave it)."""
        if priority is None:
            return
        with self._lock:
            if self.refused is not None:
                return
            try:
                self._set(tid, os.SCHED_FIFO, os.sched_param(priority))
            except (OSError, ValueError) as exc:
                self.refused = str(exc)
                log.warning(
                    "%s stays at normal priority, as will every audio thread after it: %s",
                    thread,
                    exc,
                )


REALTIME = RealtimePriority()  # one per process: a refusal holds for the whole process


def realtime_plugin_threads(priority: int | None) -> None:
    """Give the threads of ALSA's pulse plugin the audio thread's priority.

    With PulseAudio or PipeWire behind ALSA (the desktop, the emulator, the
    test rig) each open PCM moves its audio on a thread of this process
    (PLUGIN_THREAD). Left at normal priority it came late under load, and the
    real-time audio thread's reads then returned bursts: the rings to
    pjmedia over- and underran, and playback underran. A card's own driver
    has no such thread, so on the Pi there is nothing to find.
    """
    if priority is None or REALTIME.refused is not None:
        return
    for task in Path("/proc/self/task").iterdir():
        try:
            named = (task / "comm").read_text().strip() == PLUGIN_THREAD
            if named and os.sched_getscheduler(int(task.name)) != os.SCHED_FIFO:
                REALTIME.request(priority, f"ALSA plugin thread {task.name}", int(task.name))
        except OSError:
            continue  # the thread ended meanwhile


def _byte_vector_reader() -> Callable[[Any], bytes]:
    """The fastest correct way to copy a pj.ByteVector into bytes.

    `bytes(vector)` walks SWIG's iterator, about 350 us per 20 ms frame: over
    1.5 % of a core for the speaker alone. A std::vector<unsigned char> starts
    with its begin and end pointers (libstdc++ and libc++), so two pointer
    reads and one memcpy do it in about 2 us. That layout is checked here on
    vectors of known content; on any mismatch the slow way is used.
    """

    def direct(vector: Any) -> bytes:
        address = int(vector.this)
        begin = ctypes.c_void_p.from_address(address).value or 0
        end = ctypes.c_void_p.from_address(address + ctypes.sizeof(ctypes.c_void_p)).value or 0
        return ctypes.string_at(begin, end - begin) if end > begin else b""

    try:
        for sample in (bytes(range(256)) * 3, b"\x01", bytes(640)):
            if direct(pj.ByteVector(sample)) != sample:
                raise ValueError("layout differs")
    except (ValueError, TypeError, AttributeError, OSError) as exc:
        log.debug("ByteVector read through SWIG (%s)", exc)
        return bytes
    return direct


_read_byte_vector = _byte_vector_reader()


class _AlsaPort(BridgePort):
    """The bridge's face in pjsua's conference bridge (callbacks on pjmedia's clock).

    The callbacks run on pjmedia's null-clock thread: they touch only the two
    rings and their own counters, never the event loop. That thread gets the
    audio thread's real-time priority at its first callback: pjmedia asks for
    none on Linux (its "highest priority" under SCHED_OTHER is no change), and
    a clock thread that came late under load over- and underran the rings,
    each time a gap in both directions of the call.
    """

    def __init__(self, sound: AlsaSound) -> None:
        self._wanted = sound._wanted
        self._capture = sound.capture_ring
        self._playback = sound.playback_ring
        self._samples = sound.samples
        self._silence = bytes(sound.frame_bytes)
        self.frames = 0
        self.cpu = 0.0
        self.streaming = False  # set by the audio thread; until then speaker frames are dropped
        self._priority = sound.config.realtime_priority
        self._clock_thread: int | None = None  # the native id whose priority was set
        # pjmedia's clock is taken to have stopped once it has not asked for a
        # frame for half a ring (a live one is late by a frame or two; the
        # ring, at its target of two frames, would overflow soon after).
        self._stopped_after_s = sound.config.ring_frames * sound.config.frame_ms / 2000
        self.requested_at = -self._stopped_after_s  # monotonic time of the last request
        super().__init__("alsa", sound.config.frame_ms, RATE)

    def clocked(self) -> bool:
        """Whether pjmedia's clock calls the port (any thread): it stops while
        the phone has no call."""
        return time.monotonic() - self.requested_at < self._stopped_after_s

    def _on_clock_thread(self) -> None:
        """Raise the clock thread's priority once (a new sound device, at each
        call, brings a new thread; after a refusal `REALTIME` asks no more)."""
        thread = threading.get_native_id()
        if thread != self._clock_thread:
            self._clock_thread = thread
            REALTIME.request(self._priority, "pjmedia's clock thread")

    @pjsua_callback(log_repeats=False)
    def onFrameRequested(self, frame: Any) -> None:
        self._on_clock_thread()
        started = time.thread_time()
        if not self.clocked():
            self._capture.clear()  # the clock starts again: what the ring holds is old
            self._wanted.set()  # and the card may be stopped: start it
        self.requested_at = time.monotonic()
        pcm = self._capture.read(self._samples)
        frame.buf = pj.ByteVector(pcm)
        frame.size = len(pcm)
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        self.frames += 1
        self.cpu += time.thread_time() - started

    @pjsua_callback(log_repeats=False)
    def onFrameReceived(self, frame: Any) -> None:
        self._on_clock_thread()
        if not self.streaming:
            return
        started = time.thread_time()
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
            self._playback.write(_read_byte_vector(frame.buf))
        elif self.clocked():
            self._playback.write(self._silence)
        # else: the bridge's heartbeat to a port nothing is connected to; the
        # audio thread reads the ring only while the clock asks for frames, so
        # writing these would only fill it (five overruns a second, for a tone).
        self.cpu += time.thread_time() - started
