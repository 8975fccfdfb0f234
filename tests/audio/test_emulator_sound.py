"""The emulator's window on sound devices (PulseAudio sinks through ALSA, as a
desktop's PulseAudio or PipeWire plugin): a call placed by a real click is
heard both ways."""

from __future__ import annotations

import time
from pathlib import Path

import alsaaudio
import pytest

from phone.demo import free_port, loopback_uri, phone_config
from tests.audio.test_phone_sound import Line, alsa_board, dominant
from tests.emulator.conftest import xvfb
from tests.emulator.phone_window import EmulatorPhone
from tests.emulator.x11 import Xvfb
from tests.peers import pulseaudio
from tests.phones import PhoneFactory, dominant_frequency, has_call, no_calls, phones

__all__ = ["phones", "xvfb"]

pytestmark = pytest.mark.slow


def test_a_clicked_call_is_heard_both_ways(
    pulse: pulseaudio.PulseAudioServer, phones: PhoneFactory, xvfb: Xvfb, tmp_path: Path
) -> None:
    for sink in ("spk", "mic"):  # other tests of the session may have turned them down
        mixer = alsaaudio.Mixer("Master", device=pulse.control(sink))
        mixer.setvolume(100)
        mixer.setmute(0)
    a_port = free_port()
    bob, bob_uri = phones.direct(
        "bob", [("Alice", loopback_uri("alice", a_port))], mic=phones.tone("bob", 500)
    )
    config = phone_config(
        "alice", a_port, [("Bob", bob_uri)], tmp_path, "emulator", alsa_board(pulse)
    )
    line = Line(pulse, talk_hz=700)
    alice = EmulatorPhone(xvfb, tmp_path, ["--config", str(config)], buttons=4).start()
    try:
        # Clicked once the card has run and stopped, as a person clicks a
        # while after the window opens: the call starts the idle card.
        alice.wait_for(
            lambda s: (
                s["sound"]
                and s["sound"]["state"] == "running"
                and s["sound"]["cycles"] > 0
                and not s["sound"]["streaming"]
            ),
            what="the sound device open and idle",
        )
        alice.click("contact-1")
        bob.wait_for(has_call("ringing"), what="bob rings")
        bob.press("answer")
        alice.wait_for(has_call("confirmed"), what="in a call")
        talk_from = time.monotonic() + 0.5
        time.sleep(3)
        talk_to = time.monotonic()
        assert alice.window is not None
        alice.window.close()
        assert alice.wait_exit() == 0
        bob.wait_for(no_calls, what="alice hung up")
    finally:
        line.stop()
        alice.stop()
    assert dominant(line.heard(talk_from, talk_to)) == pytest.approx(500, rel=0.01)  # Bob
    assert bob.stop() == 0
    assert dominant_frequency(phones.workdir / "bob-speaker.wav") == pytest.approx(700, rel=0.01)
