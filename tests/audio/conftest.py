"""Fixtures for the audio tests: a private PulseAudio (ALSA's stand-in) and speech.

ALSA reads its configuration once per process, so one session-wide
environment names the PCMs of both daemons: `pulse` runs from the start,
`pulse_late` only when a test starts it (a device that appears later).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from tests.audio.farend import FarEnd
from tests.audio.room import speech
from tests.peers import pulseaudio

RATE = 16000


@pytest.fixture(scope="session", autouse=True)
def _prompt_threads() -> Iterator[None]:
    """pjmedia's clock thread and the ALSA thread need the GIL on time."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture(scope="session")
def _pulse_pair() -> Iterator[tuple[pulseaudio.PulseAudioServer, pulseaudio.PulseAudioServer]]:
    reason = pulseaudio.available()
    if reason is not None:
        pytest.skip(reason)
    main = pulseaudio.PulseAudioServer(["spk", "mic"])
    late = pulseaudio.PulseAudioServer(["late"])
    saved = {key: os.environ.get(key) for key in ("ALSA_CONFIG_PATH", pulseaudio.LATENCY_ENV)}
    os.environ.update(pulseaudio.client_env(main, late))
    os.environ.pop(pulseaudio.LATENCY_ENV, None)
    main.start()
    yield main, late
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    with contextlib.ExitStack() as removing:  # both, even when one did not stop cleanly
        removing.callback(late.close)
        removing.callback(main.close)


@pytest.fixture(scope="session")
def pulse(_pulse_pair: tuple[pulseaudio.PulseAudioServer, ...]) -> pulseaudio.PulseAudioServer:
    """A running PulseAudio with sinks `spk` (the phone's speaker) and `mic`."""
    return _pulse_pair[0]


@pytest.fixture
def pulse_late(
    _pulse_pair: tuple[pulseaudio.PulseAudioServer, ...],
) -> Iterator[pulseaudio.PulseAudioServer]:
    """A PulseAudio with sink `late`, not running until the test starts it."""
    late = _pulse_pair[1]
    yield late
    late.stop()
    late.check_stopped()


@pytest.fixture(scope="session")
def far_speech() -> np.ndarray:
    """About 12 s of far-end speech (espeak-ng, or seeded speech-like noise)."""
    text = (
        "The quick brown fox jumps over the lazy dog. Echo cancellation test sentence number one."
    )
    return np.tile(speech(text, voice="en", seed=1), 2)


@pytest.fixture(scope="session")
def near_speech() -> np.ndarray:
    """Near-end speech in another voice."""
    text = "Another voice is speaking now, saying different words about the weather."
    return speech(text, voice="en+f3", seed=2)


@pytest.fixture
def far_end(pj_endpoint: object) -> Iterator[FarEnd]:
    """Far-end bridge ports for one test, ended at teardown (before libDestroy)."""
    ports = FarEnd()
    yield ports
    ports.destroy()
