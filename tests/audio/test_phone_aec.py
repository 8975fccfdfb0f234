"""Echo cancellation end to end: two phones in a call, one of them hands-free
in a virtual room (PulseAudio sinks, `python -m tests.audio.room`), the far end on
WAV files. The far end's own speech coming back is the echo."""

from __future__ import annotations

import subprocess
import time
import wave
from pathlib import Path

import alsaaudio
import numpy as np
import pytest

from tests.audio.rig import first_clean_take, stall_glitches
from tests.audio.room import (
    EchoPath,
    level_db,
    read_glitches,
    read_wav,
    room_command,
    speech,
    write_wav,
)
from tests.audio.test_phone_sound import alsa_board
from tests.peers import pulseaudio
from tests.peers.ports import free_port
from tests.phones import PhoneFactory, has_call, no_calls, phones

__all__ = ["phones"]

pytestmark = pytest.mark.slow
RATE = 16000
CALL_S = 15
MEASURED_S = 6  # the end of the call, where the echo level is read


def far_end_level(path: Path, from_s: float, to_s: float) -> float:
    """dBFS of a stretch of what the far end recorded."""
    part = read_wav(path)[int(from_s * RATE) : int(to_s * RATE)]
    assert part.size > RATE, "the far end recorded less than a second of the call"
    return level_db(part)


def echo_at_far_end(
    pulse: pulseaudio.PulseAudioServer, phones: PhoneFactory, echo: str, run: str
) -> float:
    """dBFS of what the far end hears while only it talks (its own echo), from
    the first of RIG_TAKES calls in which the machine did not stall the rig."""
    level, void = first_clean_take(lambda n: echo_take(pulse, phones, echo, f"{run}-{n}"))
    if void:
        print(f"AEC {echo}: void takes before this one: {void}")
    return level


def echo_take(
    pulse: pulseaudio.PulseAudioServer, phones: PhoneFactory, echo: str, run: str
) -> tuple[float, list[str]]:
    """One call: the far end's echo level, and the breaks in the rig's timing."""
    for sink in ("spk", "mic"):
        mixer = alsaaudio.Mixer("Master", device=pulse.control(sink))
        mixer.setvolume(100)
        mixer.setmute(0)
    far_speech = phones.workdir / "far.wav"
    if not far_speech.exists():
        voice = speech("Can you hear me? I am talking to a hands free phone in a room.")
        write_wav(far_speech, voice * (0.9 * 32767 / max(1.0, float(np.abs(voice).max()))))
    room_dir = phones.workdir / f"room-{run}"
    room = subprocess.Popen(
        room_command(
            pulse.capture_pcm("spk"),
            pulse.playback_pcm("mic"),
            EchoPath(delay_ms=40, decay_ms=100, gain_db=-6),
            noise_db=-90,
            record_dir=room_dir,
            realtime_priority=50,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        a_port, b_port = free_port(), free_port()
        handsfree, _ = phones.direct(
            f"hf-{run}", [], port=a_port, board=alsa_board(pulse), audio={"echo": echo}
        )
        far = phones.start(
            f"far-{run}",
            {"uri": f"sip:far@127.0.0.1:{b_port}"},
            [("Handsfree", f"sip:hf-{run}@127.0.0.1:{a_port}")],
            mic=far_speech,
        )
        far.press("contact-1")
        handsfree.wait_for(has_call("ringing"))
        handsfree.press("answer")
        far.wait_for(has_call("confirmed"))
        # Glitches count from 2 s before the measured stretch (the last 6 s):
        # the sound starting with the call may underrun once, long before it.
        time.sleep(CALL_S - MEASURED_S - 2)
        before = handsfree.state()["sound"]
        time.sleep(MEASURED_S + 2)
        sound = handsfree.state()["sound"]
        far.press("end")
        handsfree.wait_for(no_calls)
        far.stop()
    finally:
        room.terminate()
        room.wait(10)
    # The recorder started with the phone; skip the start-up and ringing, and
    # the first seconds in which the canceller converges and the bridge settles
    # its echo reference alignment (PulseAudio's latency creeps up for about
    # 10 s, and each realignment makes the canceller adapt again).
    recording = phones.workdir / f"far-{run}-speaker.wav"
    with wave.open(str(recording), "rb") as w:
        seconds = w.getnframes() / RATE
    glitches = read_glitches(room_dir) + stall_glitches(before, sound)
    return far_end_level(recording, seconds - MEASURED_S, seconds - 1), glitches


def test_echo_is_heard_without_aec_and_30_db_lower_with_it(
    pulse: pulseaudio.PulseAudioServer, phones: PhoneFactory
) -> None:
    without = echo_at_far_end(pulse, phones, "none", "off")
    with_aec = echo_at_far_end(pulse, phones, "webrtc", "on")
    print(f"far end hears its echo at {without:.1f} dBFS without AEC, {with_aec:.1f} with")
    assert without > -45, f"no echo to cancel: {without:.1f} dBFS"
    assert with_aec < without - 30, f"echo {without:.1f} dBFS without AEC, {with_aec:.1f} with"
