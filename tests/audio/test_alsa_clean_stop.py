"""Phones on ALSA sound (PulseAudio null sinks) stop with status 0 on SIGTERM
after any history of calls: the scenarios of tests/test_clean_stop.py, with
both phones running the ALSA bridge and its echo canceller."""

from __future__ import annotations

import pytest

from tests.audio.test_phone_sound import alsa_board
from tests.peers import pulseaudio
from tests.phones import PhoneFactory, phones
from tests.test_clean_stop import SCENARIOS, start_pair, stop_both

__all__ = ["phones"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_both_phones_on_alsa_stop_cleanly(
    pulse: pulseaudio.PulseAudioServer, phones: PhoneFactory, scenario: str
) -> None:
    alice, bob = start_pair(phones, board=alsa_board(pulse))
    for phone in (alice, bob):
        phone.wait_for(lambda s: (s["sound"] or {}).get("state") == "running", what="sound running")
    SCENARIOS[scenario](alice, bob)
    stop_both(alice, bob)
