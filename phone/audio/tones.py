"""Call progress and ringer tones, generated as 16 kHz S16 frames.

Ringback and busy follow ITU-T E.180 (Supplement 2 lists each country's
values): the CEPT/European 425 Hz tones, or the North American dual tones
(ringback 440+480 Hz 2 s on 4 s off, busy 480+620 Hz 0.5 s on 0.5 s off).
The ringer is the phone's own: a warble between two frequencies, which is
easy to hear in a room and unlike any call-progress tone. Each burst fades in
and out over a few milliseconds so the cadence does not click.

`tone_frames` yields frames for `AlsaSound.play_tone`; one cadence cycle is
rendered once and then sliced, so a frame costs a copy.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

RATE = 16000
FADE_MS = 5


class ToneKind(StrEnum):
    RING = "ring"
    RINGBACK = "ringback"
    BUSY = "busy"


@dataclass(frozen=True)
class ToneSpec:
    """Frequencies (Hz) summed, or alternated every `warble_ms` when it is set;
    `cadence_ms` is on, off, on, off... and repeats."""

    frequencies: tuple[float, ...]
    cadence_ms: tuple[int, ...]
    level_dbfs: float = -12.0
    warble_ms: int = 0

    def __post_init__(self) -> None:
        if not self.frequencies or not self.cadence_ms or len(self.cadence_ms) % 2:
            raise ValueError("a tone needs frequencies and on/off pairs of cadence")
        if self.level_dbfs > 0:
            raise ValueError(f"tone level must be at most 0 dBFS, not {self.level_dbfs}")


TONE_PLANS: dict[str, dict[ToneKind, ToneSpec]] = {
    "europe": {
        ToneKind.RINGBACK: ToneSpec((425.0,), (1000, 4000)),
        ToneKind.BUSY: ToneSpec((425.0,), (500, 500)),
        ToneKind.RING: ToneSpec((800.0, 1000.0), (1000, 2000), -6.0, warble_ms=50),
    },
    "north-america": {
        ToneKind.RINGBACK: ToneSpec((440.0, 480.0), (2000, 4000)),
        ToneKind.BUSY: ToneSpec((480.0, 620.0), (500, 500)),
        ToneKind.RING: ToneSpec((800.0, 1000.0), (2000, 4000), -6.0, warble_ms=50),
    },
}


def render_cycle(spec: ToneSpec, rate: int = RATE) -> array:
    """One full cadence cycle of `spec` as S16 samples."""
    amplitude = 32767 * 10 ** (spec.level_dbfs / 20)
    fade = max(1, rate * FADE_MS // 1000)
    out = array("h")
    step = [2 * math.pi * f / rate for f in spec.frequencies]
    for index, duration in enumerate(spec.cadence_ms):
        count = rate * duration // 1000
        if index % 2:
            out.extend([0] * count)
            continue
        phase = 0.0  # the warble changes frequency, never phase: no click
        for n in range(count):
            gain = min(1.0, n / fade, (count - 1 - n) / fade)
            if spec.warble_ms:
                which = (n * 1000 // (rate * spec.warble_ms)) % len(step)
                value = math.sin(phase)
                phase += step[which]
            else:
                value = sum(math.sin(w * n) for w in step) / len(step)
            out.append(int(amplitude * gain * value))
    return out


def tone_frames(
    spec: ToneSpec, frame_ms: int = 20, rate: int = RATE, repeat: bool = True
) -> Iterator[bytes]:
    """Frames of `spec`, cycle after cycle (or one cycle when `repeat` is False)."""
    cycle = render_cycle(spec, rate).tobytes()
    size = rate * frame_ms // 1000 * 2
    pos = 0
    while True:
        if pos + size <= len(cycle):
            yield cycle[pos : pos + size]
            pos += size
        else:
            head = cycle[pos:]
            if not repeat:
                yield head + bytes(size - len(head))
                return
            pos = size - len(head)
            yield head + cycle[:pos]
        if pos == len(cycle):
            if not repeat:
                return
            pos = 0


def tone(kind: ToneKind, plan: str = "europe", frame_ms: int = 20) -> Iterator[bytes]:
    """Frames of a named tone of a plan; ValueError for an unknown plan."""
    if plan not in TONE_PLANS:
        raise ValueError(f"unknown tone plan {plan!r} (known: {', '.join(TONE_PLANS)})")
    return tone_frames(TONE_PLANS[plan][kind], frame_ms)
