"""End to end through the virtual room: the echo at the far end with AEC off and on.

far end -> AlsaSound -> ALSA pulse PCM -> room (40 ms, 100 ms decay, -6 dB, noise)
-> ALSA pulse PCM -> AlsaSound (+AEC) -> far end. In process, not yet a call
between two phones (the phone core integrates AlsaSound later).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from phone.audio.alsa import ECHO_LEAD_MS
from phone.audio.echo import EchoAlgorithm, EchoConfig
from tests.audio.rig import analyse, run_rig
from tests.audio.room import EchoPath
from tests.peers.pulseaudio import PulseAudioServer

SECONDS = 8.0

pytestmark = pytest.mark.slow


def test_echo_is_present_without_aec_and_30_db_lower_with_it(
    pj_endpoint: object, pulse: PulseAudioServer, far_speech: np.ndarray, tmp_path: Path
) -> None:
    off = analyse(
        run_rig(pulse, tmp_path / "off", EchoConfig(EchoAlgorithm.NONE), far_speech, SECONDS)
    )
    on_run = run_rig(pulse, tmp_path / "on", EchoConfig(), far_speech, SECONDS)
    on = analyse(on_run)
    # Off: what the far end hears back is the room's echo, within a few dB.
    assert abs(off.erle_db) < 3.0, off
    # On: at least 30 dB lower than that, once converged.
    assert on.erle_db - off.erle_db >= 30.0, (off, on, on_run.stats)
    assert on_run.stats.aec and on_run.stats.aec_backend == "webrtc"  # the default


@pytest.mark.parametrize("delay_ms", [20, 60, 120])
def test_the_first_call_reaches_40_db_within_2_s_in_rooms_of_20_to_120_ms(
    pj_endpoint: object,
    pulse: PulseAudioServer,
    far_speech: np.ndarray,
    tmp_path: Path,
    delay_ms: int,
) -> None:
    """A fresh bridge (the first call after start) in a room with a long tail:
    ALSA's offset leaves such echoes outside the canceller's 48 ms filter; the
    lag measured from the first second of far-end speech puts the reference
    ahead of them, and the canceller relearns that second against it, so it
    holds 40 dB within 2 s on the first call too (without relearning it took
    3-4 s), and keeps cancelling. (The room's own latency, 30 ms, is the
    shortest delay it makes: the 20 ms room echoes at 30 ms.)"""
    path = EchoPath(delay_ms=delay_ms, decay_ms=150, gain_db=-8)
    run = run_rig(pulse, tmp_path, EchoConfig(), far_speech, SECONDS, echo_path=path)
    figures = analyse(run)
    print(f"{delay_ms} ms room: {figures}; {run.stats}; void takes: {run.void_takes}")
    assert figures.echo_off_level_db > -45.0, figures  # an echo to cancel
    assert figures.target_s is not None and figures.target_s <= 2.0, (figures, run.stats)
    assert figures.erle_db >= 30.0, (figures, run.stats)
    # The reference comes from the measured lag, which holds the room's delay.
    assert run.stats.alignment_ms is not None
    assert run.stats.alignment_ms + ECHO_LEAD_MS >= delay_ms, run.stats


def test_the_call_after_an_idle_spell_reaches_40_db_within_2_s(
    pj_endpoint: object, pulse: PulseAudioServer, far_speech: np.ndarray, tmp_path: Path
) -> None:
    """Between calls the bridge stops its card (nothing needs sound) and starts
    it again for the next call, which realigns the two streams: the lag
    measured in the first call and what the canceller learned are kept, so
    the second call holds 40 dB within 2 s too."""
    path = EchoPath(delay_ms=60, decay_ms=150, gain_db=-8)
    run = run_rig(pulse, tmp_path, EchoConfig(), far_speech, SECONDS, echo_path=path, calls=2)
    figures = analyse(run)
    print(f"second call, 60 ms room: {figures}; {run.stats}; void takes: {run.void_takes}")
    assert figures.echo_off_level_db > -45.0, figures
    assert figures.target_s is not None and figures.target_s <= 2.0, (figures, run.stats)
    assert figures.erle_db >= 30.0, (figures, run.stats)
    assert run.stats.alignment_ms is not None
    assert run.stats.alignment_ms + ECHO_LEAD_MS >= 60, run.stats


def test_the_first_call_after_a_ringback_reaches_40_db_within_2_s(
    pj_endpoint: object, pulse: PulseAudioServer, far_speech: np.ndarray, tmp_path: Path
) -> None:
    """How a call usually begins: the card starts for the ringback, runs the
    canceller over the tone (whose frames the delay estimator skips), and the
    far end answers and talks. The first call after start holds 40 dB within
    2 s here too."""
    path = EchoPath(delay_ms=60, decay_ms=150, gain_db=-8)
    run = run_rig(
        pulse, tmp_path, EchoConfig(), far_speech, SECONDS, echo_path=path, ringback_s=6.0
    )
    figures = analyse(run)
    print(
        f"first call after a ringback, 60 ms room: {figures}; {run.stats}; void takes: {run.void_takes}"
    )
    assert figures.echo_off_level_db > -45.0, figures
    assert figures.target_s is not None and figures.target_s <= 2.0, (figures, run.stats)
    assert figures.erle_db >= 30.0, (figures, run.stats)
