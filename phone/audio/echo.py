"""Acoustic echo cancellation with pjmedia's echo canceller, through ctypes.

pjsua only runs its echo canceller on a real sound port it owns
(`pjsua_set_ec` does nothing with the null device), but the pjsua2 shared
object exports pjmedia's echo API (`pjmedia/echo.h`, checked against the
2.15.1 header): `pjmedia_echo_create2`, `_cancel`, `_reset`, `_get_stat`,
`_destroy`, and `pjsua_pool_create` for the pool. We call
`pjmedia_echo_cancel` synchronously with a reference frame we aligned
ourselves (see `phone.audio.alsa`), which measured better than pjmedia's own
playback/capture pairing.

For WebRTC, pjmedia passes `tail_ms` to `WebRtcAec_Process` as the sound-card
delay hint (`echo_webrtc.c`), not as a filter length: it must not exceed the
real residual delay, or the canceller fails to converge. For Speex it is the
filter length and must cover the room's decay.

At start-up the canceller proves itself: the symbols must be there, a
create/cancel/destroy on a silent frame must succeed, and the backend pjmedia
actually built must be the one asked for (pjmedia silently substitutes an
echo suppressor for an algorithm it was built without). If anything fails,
`EchoCanceller` degrades to passing the capture through and logs a warning.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntFlag, StrEnum
from typing import Any

from phone import pjproject
from phone.pjproject import EchoStat as _EchoStat

log = logging.getLogger(__name__)

PJ_SUCCESS = 0
PJ_ENOTSUP = 70012  # PJ_ERRNO_START_STATUS (70000) + 12
PJMEDIA_ECHO_STAT_NOT_SPECIFIED = 999999
STAT_EVERY_FRAMES = 50
# How much silence a reset canceller is given before it relearns. WebRTC's
# legacy AEC starts each instance (and each `pjmedia_echo_reset`) in a
# start-up phase: it passes its first 10 ms blocks through untouched while it
# sizes its far-end buffer (`ProcessNormal` in echo_cancellation.c). Replaying
# a call's speech straight into that phase left the relearned canceller 5-20
# dB short for the seconds after, on 4 of 5 recorded first calls; 60 ms of
# silence first fixed those, whose replays began with the stream's own quiet
# frames. After a ringback the replay begins with the tone instead, and a
# canceller then needed 300 ms of quiet first (15 frames, counting quiet
# frames at the replay's head): with less it held 26-30 dB, at any place of
# the reference, until the call's fifth second; with 300 ms or more it reached
# 50 dB in the call's third second (recorded first calls after a 6 s
# ringback, replayed offline). 400 ms, for a margin; it costs 20 frames of
# CPU per relearn. A call's own canceller meets silence before the far end
# talks.
STARTUP_MS = 400


class EchoFlag(IntFlag):
    """`pjmedia_echo_flag` from pjmedia/echo.h (2.15.1)."""

    DEFAULT = 0
    SPEEX = 1
    SIMPLE = 2
    WEBRTC = 3
    WEBRTC_AEC3 = 4
    ALGO_MASK = 15
    NO_LOCK = 16
    USE_SIMPLE_FIFO = 32
    USE_SW_ECHO = 64
    USE_NOISE_SUPPRESSOR = 128
    USE_GAIN_CONTROLLER = 256
    AGGRESSIVENESS_CONSERVATIVE = 0x1000
    AGGRESSIVENESS_MODERATE = 0x2000
    AGGRESSIVENESS_AGGRESSIVE = 0x3000


class EchoAlgorithm(StrEnum):
    WEBRTC = "webrtc"
    WEBRTC_AEC3 = "webrtc-aec3"  # only where pjproject was built with it (the Pi image)
    SPEEX = "speex"
    NONE = "none"


class Aggressiveness(StrEnum):
    DEFAULT = "default"
    CONSERVATIVE = "conservative"
    MODERATE = "moderate"
    AGGRESSIVE = "aggressive"


_ALGORITHM_FLAG = {
    EchoAlgorithm.WEBRTC: EchoFlag.WEBRTC,
    EchoAlgorithm.WEBRTC_AEC3: EchoFlag.WEBRTC_AEC3,
    EchoAlgorithm.SPEEX: EchoFlag.SPEEX,
}
_AGGRESSIVENESS_FLAG = {
    Aggressiveness.DEFAULT: EchoFlag.DEFAULT,
    Aggressiveness.CONSERVATIVE: EchoFlag.AGGRESSIVENESS_CONSERVATIVE,
    Aggressiveness.MODERATE: EchoFlag.AGGRESSIVENESS_MODERATE,
    Aggressiveness.AGGRESSIVE: EchoFlag.AGGRESSIVENESS_AGGRESSIVE,
}
# What pjmedia_echo_get_stat names each backend (echo_webrtc.c,
# echo_webrtc_aec3.cpp, echo_suppress.c); Speex has no get_stat: PJ_ENOTSUP.
_BACKEND_NAME = {
    EchoAlgorithm.WEBRTC: b"WebRTC AEC",
    EchoAlgorithm.WEBRTC_AEC3: b"WebRTC AEC3",
    EchoAlgorithm.SPEEX: None,
}
_SUPPRESSOR_NAME = b"Echo suppressor"


class EchoUnavailable(RuntimeError):
    """pjmedia's echo canceller cannot be used in this process (the reason says why)."""


@dataclass(frozen=True)
class EchoConfig:
    """How to cancel echo; the defaults are the measured best on speech.

    `delay_ms` is WebRTC's delay hint: the echo delay left after our own
    alignment (the acoustic path). `tail_ms` is Speex's filter length.
    """

    algorithm: EchoAlgorithm = EchoAlgorithm.WEBRTC
    delay_ms: int = 0
    tail_ms: int = 200
    aggressiveness: Aggressiveness = Aggressiveness.CONSERVATIVE
    noise_suppressor: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.delay_ms <= 500:
            raise ValueError(f"echo delay_ms must be within 0..500, not {self.delay_ms}")
        if not 10 <= self.tail_ms <= 1000:
            raise ValueError(f"echo tail_ms must be within 10..1000, not {self.tail_ms}")

    def flags(self) -> int:
        if self.algorithm is EchoAlgorithm.NONE:
            raise ValueError("no flags for algorithm 'none'")
        flags = _ALGORITHM_FLAG[self.algorithm] | EchoFlag.NO_LOCK
        flags |= _AGGRESSIVENESS_FLAG[self.aggressiveness]
        if self.noise_suppressor:
            flags |= EchoFlag.USE_NOISE_SUPPRESSOR
        return int(flags)

    def tail_argument(self) -> int:
        return self.delay_ms if self.algorithm is EchoAlgorithm.WEBRTC else self.tail_ms


@dataclass(frozen=True)
class EchoStats:
    algorithm: EchoAlgorithm
    backend: str
    frames: int
    delay_ms: int | None


class _PjmediaEcho:
    """The exported C functions with their prototypes, from the loaded pjsua2."""

    def __init__(self) -> None:
        try:
            import pjsua2

            lib = pjproject.library()
        except (ImportError, pjproject.LibraryMissing) as exc:
            raise EchoUnavailable(f"pjsua2 shared object not loadable: {exc}") from exc
        names = (
            "pjsua_get_state",
            "pjsua_pool_create",
            "pj_pool_release",
            "pj_thread_is_registered",
            "pj_thread_register",
            "pjmedia_echo_create2",
            "pjmedia_echo_cancel",
            "pjmedia_echo_reset",
            "pjmedia_echo_get_stat",
            "pjmedia_echo_stat_default",
            "pjmedia_echo_destroy",
        )
        missing = pjproject.missing(*names)
        if missing:
            raise EchoUnavailable(f"pjsua2 does not export {', '.join(missing)}")
        # The SWIG module carries the header's enum: it must match ours.
        for flag in EchoFlag:
            theirs = getattr(pjsua2, f"PJMEDIA_ECHO_{flag.name}", None)
            if theirs is not None and int(theirs) != int(flag):
                raise EchoUnavailable(f"PJMEDIA_ECHO_{flag.name} is {theirs} here, not {int(flag)}")
        self.lib = lib

    def ensure_thread_registered(self) -> None:
        """pjlib aborts when called from a thread it does not know: register ours once."""
        try:
            pjproject.register_thread(f"aec-{threading.get_ident() % 100000}")
        except RuntimeError as exc:
            raise EchoUnavailable(str(exc)) from exc


_pjmedia: _PjmediaEcho | None = None
_pjmedia_lock = threading.Lock()


def _load() -> _PjmediaEcho:
    global _pjmedia
    with _pjmedia_lock:
        if _pjmedia is None:
            _pjmedia = _PjmediaEcho()
        return _pjmedia


class _Backend:
    """One pjmedia echo canceller instance and its pool."""

    def __init__(
        self, c: _PjmediaEcho, config: EchoConfig, clock_rate: int, samples_per_frame: int
    ) -> None:
        if c.lib.pjsua_get_state() == 0:  # PJSUA_STATE_NULL: no pool factory yet
            raise EchoUnavailable("pjsua is not created (create the Endpoint first)")
        c.ensure_thread_registered()
        self.c = c
        self.pool = c.lib.pjsua_pool_create(b"aec", 512, 512)
        if not self.pool:
            raise EchoUnavailable("pjsua_pool_create returned NULL")
        state = ctypes.c_void_p()
        status = c.lib.pjmedia_echo_create2(
            self.pool,
            clock_rate,
            1,
            samples_per_frame,
            config.tail_argument(),
            0,
            config.flags(),
            ctypes.byref(state),
        )
        if status != PJ_SUCCESS or not state:
            c.lib.pj_pool_release(self.pool)
            raise EchoUnavailable(f"pjmedia_echo_create2 failed with status {status}")
        self.state = state
        self.samples_per_frame = samples_per_frame

    def backend_name(self) -> bytes | None:
        stat = _EchoStat()
        self.c.lib.pjmedia_echo_stat_default(ctypes.byref(stat))
        status = self.c.lib.pjmedia_echo_get_stat(self.state, ctypes.byref(stat))
        if status == PJ_ENOTSUP:
            return None
        return stat.name

    def delay_ms(self) -> int | None:
        stat = _EchoStat()
        self.c.lib.pjmedia_echo_stat_default(ctypes.byref(stat))
        if self.c.lib.pjmedia_echo_get_stat(self.state, ctypes.byref(stat)) != PJ_SUCCESS:
            return None
        return None if stat.delay == PJMEDIA_ECHO_STAT_NOT_SPECIFIED else int(stat.delay)

    def cancel(self, capture: bytearray, playback: bytes) -> None:
        self.c.ensure_thread_registered()
        rec = (ctypes.c_int16 * self.samples_per_frame).from_buffer(capture)
        play = (ctypes.c_int16 * self.samples_per_frame).from_buffer_copy(playback)
        status = self.c.lib.pjmedia_echo_cancel(self.state, rec, play, 0, None)
        if status != PJ_SUCCESS:
            raise EchoUnavailable(f"pjmedia_echo_cancel failed with status {status}")

    def reset(self) -> None:
        self.c.lib.pjmedia_echo_reset(self.state)

    def destroy(self) -> None:
        if self.state:
            self.c.lib.pjmedia_echo_destroy(self.state)
            self.state = ctypes.c_void_p()
        if self.pool:
            self.c.lib.pj_pool_release(self.pool)
            self.pool = None


class EchoCanceller:
    """Removes the echo of `playback_ref` from `capture`, one frame at a time.

    Needs a created pjsua2 Endpoint in the process (for the pool factory).
    Call `cancel` from one thread at a time (the instance is built NO_LOCK).
    With algorithm NONE, or when pjmedia's canceller fails its self-test, it
    passes the capture through; `active` tells which.

    Its owner calls `close()` once no thread can be inside `cancel` (ctypes
    runs pjmedia without the GIL, so freeing the state under a running
    `cancel` is a use after free) and before `Endpoint.libDestroy()` (the
    pool belongs to pjsua's pool factory).
    """

    def __init__(
        self, config: EchoConfig | None = None, clock_rate: int = 16000, frame_ms: int = 20
    ) -> None:
        self.config = config or EchoConfig()
        self.clock_rate = clock_rate
        self.samples_per_frame = clock_rate * frame_ms // 1000
        self.frame_bytes = self.samples_per_frame * 2
        self.startup_frames = math.ceil(STARTUP_MS / frame_ms)  # of silence before a relearn
        self._frames = 0
        self._delay_ms: int | None = None
        self._backend: _Backend | None = None
        self._backend_label = "none"
        if self.config.algorithm is EchoAlgorithm.NONE:
            log.info("echo cancellation off (configured)")
            return
        try:
            self._backend = self._create_checked()
        except EchoUnavailable as exc:
            log.warning("echo cancellation off: %s", exc)
            return
        self._backend_label = self.config.algorithm.value
        log.info(
            "echo cancellation on: %s, %d ms frames, %s %d ms, %s%s",
            self.config.algorithm.value,
            frame_ms,
            "delay hint" if self.config.algorithm is EchoAlgorithm.WEBRTC else "tail",
            self.config.tail_argument(),
            self.config.aggressiveness.value,
            ", noise suppressor" if self.config.noise_suppressor else "",
        )

    @property
    def active(self) -> bool:
        return self._backend is not None

    def cancel(self, capture: bytes, playback_ref: bytes) -> bytes:
        """The capture frame with the echo of `playback_ref` removed."""
        if len(capture) != self.frame_bytes or len(playback_ref) != self.frame_bytes:
            raise ValueError(
                f"frames must be {self.frame_bytes} bytes, got {len(capture)} and "
                f"{len(playback_ref)}"
            )
        backend = self._backend
        if backend is None:
            return capture
        out = bytearray(capture)
        backend.cancel(out, playback_ref)
        self._frames += 1
        if self._frames % STAT_EVERY_FRAMES == 0:
            # Read here, on the cancelling thread: the instance has no lock.
            self._delay_ms = backend.delay_ms()
        return bytes(out)

    def relearn(self, frames: Iterable[tuple[bytes, bytes]]) -> None:
        """Forget what was learned, then learn again from past (capture, reference) frames.

        For a reference that moved: what the filter learned against the old
        place is wrong, and adapting on live speech took it about 3 s. The
        frames already heard, replayed against the new place, teach it at
        once. Pass them up to the one last cancelled, so the stream the
        canceller sees stays continuous. The reset canceller first gets
        STARTUP_MS of silence, as at a call's start, so that its start-up
        phase does not swallow the first of them. Their output is
        dropped and they are not counted in `stats`. About 7 ms of CPU for
        2 s of frames here.
        """
        backend = self._backend
        if backend is None:
            return
        backend.reset()
        silence = bytes(self.frame_bytes)
        for _ in range(self.startup_frames):
            backend.cancel(bytearray(silence), silence)
        for capture, reference in frames:
            backend.cancel(bytearray(capture), reference)

    def stats(self) -> EchoStats:
        delay = self._delay_ms if self._backend is not None else None
        return EchoStats(
            algorithm=self.config.algorithm if self.active else EchoAlgorithm.NONE,
            backend=self._backend_label,
            frames=self._frames,
            delay_ms=delay,
        )

    def close(self) -> None:
        if self._backend is not None:
            self._backend.destroy()
            self._backend = None

    def __enter__(self) -> EchoCanceller:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _create_checked(self) -> _Backend:
        backend = _Backend(_load(), self.config, self.clock_rate, self.samples_per_frame)
        try:
            silent = bytearray(self.frame_bytes)
            backend.cancel(silent, bytes(self.frame_bytes))
            name = backend.backend_name()
            wanted = _BACKEND_NAME[self.config.algorithm]
            if name == _SUPPRESSOR_NAME or name != wanted:
                shown = name.decode(errors="replace") if name else "unnamed"
                raise EchoUnavailable(
                    f"pjmedia built {shown} instead of {self.config.algorithm.value}"
                )
            backend.reset()
        except EchoUnavailable:
            backend.destroy()
            raise
        return backend
