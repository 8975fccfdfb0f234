"""`phone demo`: a newcomer's first sight of the phone, with no server and no config.

Two virtual phones, alice and bob, run as child processes in direct mode
(no registrar) on loopback. alice presses bob's button, bob answers, each
microphone plays a tone (alice 440 Hz, bob 660 Hz), and both hang up. Along
the way it prints what each screen and LED shows, and at the end which tone
each speaker heard.
"""

from __future__ import annotations

import math
import socket
import struct
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from pathlib import Path

from phone.remote import RemotePhone, stop_all

RATE = 16000
TONES = {"alice": 440.0, "bob": 660.0}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tone_frames(freq: float, seconds: float, amplitude: float = 0.3) -> bytes:
    """16-bit mono samples at RATE of a sine at `freq` (0 Hz: silence)."""
    return b"".join(
        struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * freq * n / RATE)))
        for n in range(int(RATE * seconds))
    )


def write_wav(path: Path, frames: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)


def write_tone(path: Path, freq: float, seconds: float = 2.0, amplitude: float = 0.3) -> None:
    write_wav(path, tone_frames(freq, seconds, amplitude))


def tone_power(path: Path, freq: float) -> float:
    """Goertzel power of `freq` relative to the signal's total power (0..1)."""
    with wave.open(str(path), "rb") as w:
        rate, data = w.getframerate(), w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    samples = samples[-rate * 2 :] if len(samples) > rate * 2 else samples
    if not samples:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    total = sum(x * x for x in samples) * len(samples) / 2
    return power / total if total else 0.0


def phone_config(
    me: str,
    port: int,
    contacts: Sequence[tuple[str, str]],
    workdir: Path,
    board: str = "virtual",
    board_settings: dict[str, str] | None = None,
    rooms: Sequence[tuple[str, str]] = (),
    plugins: Sequence[str] = (),
) -> Path:
    """A direct-mode phone's TOML in `workdir`: `me` on 127.0.0.1:`port`, calling
    `contacts` (name, URI) from a `board`, then conference `rooms` (name, URI)
    on the next buttons. The virtual board's microphone and speaker are WAV
    files named after `me` unless `board_settings` says otherwise. `plugins`
    are enabled by name: a config error if one is not installed."""
    if board_settings is None and board == "virtual":
        board_settings = {
            "mic": str(workdir / f"{me}-mic.wav"),
            "speaker": str(workdir / f"{me}-speaker.wav"),
        }
    lines = ["[account]", f'uri = "{loopback_uri(me, port)}"', 'transport = "udp"', ""]
    for name, uri in contacts:
        lines += ["[[contacts]]", f'name = "{name}"', f'uri = "{uri}"', ""]
    for name, uri in rooms:
        lines += ["[[contacts]]", f'name = "{name}"', f'uri = "{uri}"', "conference = true", ""]
    buttons = max(4, len(contacts) + len(rooms))
    lines += ["[board]", f'kind = "{board}"', f"buttons = {buttons}", ""]
    lines += [f"[board.{board}]", *(f'{k} = "{v}"' for k, v in (board_settings or {}).items())]
    lines += ["", "[storage]", f'path = "{workdir / f"{me}.db"}"', ""]
    for plugin in plugins:
        lines += [f"[plugins.{plugin}]", "enabled = true", ""]
    path = workdir / f"{me}.toml"
    path.write_text("\n".join(lines))
    return path


def loopback_uri(user: str, port: int) -> str:
    return f"sip:{user}@127.0.0.1:{port}"


def show(phone: RemotePhone, step: str) -> None:
    state = phone.state()
    leds = ", ".join(
        f"{b['label']}: {b['led']['color']} {b['led']['pattern']}"
        for b in state["buttons"].values()
        if b["label"]
    )
    screen = " | ".join(line for line in state["screen"] if line)
    print(f"  {phone.name:5} [{screen}]  LEDs: {leds}")


def demo() -> int:
    with tempfile.TemporaryDirectory(prefix="simplephone-demo-") as tmp:
        workdir = Path(tmp)
        ports = {"alice": free_port(), "bob": free_port()}
        phones: dict[str, RemotePhone] = {}
        try:
            for me, peer in (("alice", "bob"), ("bob", "alice")):
                write_tone(workdir / f"{me}-mic.wav", TONES[me])
                contact = (peer.capitalize(), loopback_uri(peer, ports[peer]))
                config = phone_config(me, ports[me], [contact], workdir)
                phones[me] = RemotePhone(me, config, workdir, log_level="WARNING").start()
            alice, bob = phones["alice"], phones["bob"]

            def step(title: str) -> None:
                print(title)
                show(alice, title)
                show(bob, title)

            step("Both phones are up (direct mode, no server):")
            alice.press("contact-1")
            bob.wait_for(
                lambda s: any(c["state"] == "ringing" for c in s["calls"]), what="bob ringing"
            )
            step("alice pressed Bob's button; bob's phone rings:")
            bob.press("answer")
            for p in (alice, bob):
                p.wait_for(
                    lambda s: [c["state"] for c in s["calls"]] == ["confirmed"], what="confirmed"
                )
            step("bob pressed answer; they talk:")
            time.sleep(2.5)
            alice.press("end")
            for p in (alice, bob):
                p.wait_for(lambda s: not s["calls"], what="hung up")
            step("alice pressed end:")
        finally:
            stop_all(phones.values())
        heard = {
            me: tone_power(workdir / f"{me}-speaker.wav", TONES[peer])
            for me, peer in (("alice", "bob"), ("bob", "alice"))
        }
        ok = all(share > 0.5 for share in heard.values())
        for me, peer in (("alice", "bob"), ("bob", "alice")):
            print(f"{me} heard {peer}'s {TONES[peer]:.0f} Hz tone: {heard[me]:.0%} of the sound")
        print("Demo OK" if ok else "Demo FAILED: a tone did not arrive")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(demo())
