"""Ends bridge ports at the worst moment, in a child process (a crash must not take pytest).

The worst moment: pjmedia's clock thread has entered the port's callback and
waits for the GIL, which this thread holds in C for longer than a clock
period (it frees a long list), and the port's last reference goes at the end
of that same C loop. Before ports were ended explicitly, the clock thread
then ran Python on the half-destroyed port (AttributeError), freed it twice,
and the process died in the garbage collector: one round was enough.

    python -X faulthandler -m tests.audio.bridge_teardown SCENARIO ROUNDS [CAPTURE PLAYBACK]

Scenarios: `alsa` (AlsaSound with the WebRTC canceller, its devices open
when PCM names are given, then `destroy()`), `forgotten` (a far-end port
dropped without `destroy()`), `late` (ports dropped after `libDestroy`,
which used to abort in pjmedia). Prints one line per round; exit status 0.
"""

from __future__ import annotations

import sys
import time

import pjsua2 as pj

from phone.audio.alsa import AlsaSound, AudioConfig
from phone.audio.echo import EchoConfig
from tests.audio.farend import FarTalker
from tests.sip.stack import poll_endpoint

GIL_HOLD_OBJECTS = 2_000_000  # freeing them holds the GIL for well over a 20 ms clock tick


def drop_after_holding_the_gil(last_reference: object) -> None:
    """Drop `last_reference` at the end of a long C loop (list_dealloc runs backwards)."""
    holder = [last_reference, *(object() for _ in range(GIL_HOLD_OBJECTS))]
    del last_reference
    del holder


def endpoint() -> pj.Endpoint:
    return poll_endpoint()


def alsa_round(capture: str | None, playback: str | None) -> None:
    sound = AlsaSound(AudioConfig(capture or "null", playback or "null", echo=EchoConfig()))
    if capture and playback:
        sound.open()
        deadline = time.monotonic() + 10
        while sound.stats().cycles < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    port = sound.port
    time.sleep(0.05)  # the clock calls the port a few times
    sound.destroy()
    drop_after_holding_the_gil(port)


def forgotten_round() -> None:
    port = FarTalker(bytes(640))
    time.sleep(0.05)
    drop_after_holding_the_gil(port)


def outliving_the_stack(ep: pj.Endpoint, rounds: int) -> None:
    """Ports still alive at libDestroy, dropped after it and after the Endpoint."""
    ports = [FarTalker(bytes(640)) for _ in range(rounds)]
    time.sleep(0.05)
    ep.libDestroy()
    del ep
    while ports:
        ports.pop()
        print(f"round {rounds - len(ports)} ok", flush=True)


def main(argv: list[str]) -> None:
    scenario, rounds = argv[0], int(argv[1])
    capture, playback = (argv[2], argv[3]) if len(argv) > 3 else (None, None)
    sys.setswitchinterval(0.0005)  # as the phone runs
    if scenario == "late":
        outliving_the_stack(endpoint(), rounds)
        return
    ep = endpoint()
    for index in range(rounds):
        if scenario == "alsa":
            alsa_round(capture, playback)
        else:
            forgotten_round()
        print(f"round {index + 1} ok", flush=True)
    ep.libDestroy()


if __name__ == "__main__":
    main(sys.argv[1:])
