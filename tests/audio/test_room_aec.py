"""End to end through the virtual room: the echo at the far end with AEC off and on.

far end -> AlsaSound -> ALSA pulse PCM -> room (40 ms, 100 ms decay, -6 dB, noise)
-> ALSA pulse PCM -> AlsaSound (+AEC) -> far end. In process, not yet a call
between two phones (the phone core integrates AlsaSound later).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from phone.audio.echo import EchoAlgorithm, EchoConfig
from tests.audio.rig import analyse, run_rig
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
