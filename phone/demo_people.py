"""The people in `phone emulator --demo`: Bob and Carol, with phones of their own.

The emulator's demo shows alice's phone with no server and no config. Her
contacts are two more phones beside it on loopback, in direct mode, on the
project's own SIP stack: virtual boards in child processes (`RemotePhone`,
one pjsua endpoint per process), like `phone demo`'s. One thread of the
emulator's process plays the people by driving their control interfaces; it
touches nothing of alice's phone, whose state stays on its loop thread.

- Both answer a call after ANSWER_AFTER_S of ringing and hang up after
  TALK_S. Bob talks (espeak-ng into his microphone where it is installed, else
  a pattern of tones). For the last quarter of every minute he has DND on.
- Carol is often away: DND on for 35 s of every 50 s.

Direct mode has no presence server: each phone is its own presence agent
(plugins/presence), so alice's LEDs follow their DND (red) and availability
(green) through SUBSCRIBEs sent straight to them.

Their configs, logs and control sockets (`bob.sock`, `carol.sock`) are in
`workdir`, so a developer or a test can drive them too.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phone.demo import free_port, loopback_uri, phone_config, tone_frames, write_wav
from phone.remote import RemotePhone

log = logging.getLogger(__name__)

ANSWER_AFTER_S = 2.0
TALK_S = 45.0
POLL_S = 0.25
BOB_SAYS = (
    "Hello, this is Bob, on the simplephone demo. "
    "You are hearing me through the emulator's window. "
    "Press end, or my button, to hang up."
)
# Without espeak-ng, Bob "talks" in short rising notes (Hz, seconds; 0 Hz is a pause).
BOB_NOTES = ((523.0, 0.2), (659.0, 0.2), (784.0, 0.3), (0.0, 0.8))


@dataclass(frozen=True)
class Rhythm:
    """DND on for `dnd_s` of every `period_s`, at the start of each period or at its end."""

    period_s: float
    dnd_s: float
    dnd_first: bool

    def dnd(self, elapsed: float) -> bool:
        phase = elapsed % self.period_s
        return phase < self.dnd_s if self.dnd_first else phase >= self.period_s - self.dnd_s


@dataclass
class Person:
    name: str
    port: int
    rhythm: Rhythm
    phone: RemotePhone | None = None

    @property
    def uri(self) -> str:
        return loopback_uri(self.name.lower(), self.port)

    @property
    def contact(self) -> tuple[str, str]:
        return self.name, self.uri


def write_speech(path: Path, text: str) -> str:
    """Bob's microphone: espeak-ng's voice where installed, else tones. Says which."""
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        done = subprocess.run(
            [espeak, "-s", "150", "-w", str(path), text], capture_output=True, timeout=30
        )
        if done.returncode == 0 and path.exists():
            return "espeak-ng"
        log.warning("espeak-ng failed (%s); Bob talks in tones", done.stderr.decode().strip())
    write_wav(path, b"".join(tone_frames(freq, seconds) for freq, seconds in BOB_NOTES * 4))
    return "tones"


class DemoPeople:
    """Bob and Carol: start them, let them live, stop them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.alice_port = free_port()
        self.bob = Person("Bob", free_port(), Rhythm(60.0, 15.0, dnd_first=False))
        self.carol = Person("Carol", free_port(), Rhythm(50.0, 35.0, dnd_first=True))
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alice_uri(self) -> str:
        return loopback_uri("alice", self.alice_port)

    def alice_config(self, sound: str) -> Path:
        """alice's TOML: an emulator board, Bob and Carol on the first buttons."""
        return phone_config(
            "alice",
            self.alice_port,
            [self.bob.contact, self.carol.contact],
            self.workdir,
            board="emulator",
            board_settings={"sound": sound},
        )

    def start(self) -> None:
        voice = write_speech(self.workdir / "bob-mic.wav", BOB_SAYS)
        alice = ("Alice", self.alice_uri)
        for person in (self.bob, self.carol):
            name = person.name.lower()
            settings = {"speaker": str(self.workdir / f"{name}-speaker.wav")}
            if person is self.bob:
                settings["mic"] = str(self.workdir / "bob-mic.wav")
            config = phone_config(name, person.port, [alice], self.workdir, "virtual", settings)
            person.phone = RemotePhone(name, config, self.workdir, log_level="WARNING").start()
        log.info(
            "demo people up: Bob (%s, talks with %s), Carol (%s)",
            self.bob.uri,
            voice,
            self.carol.uri,
        )
        self._thread = threading.Thread(target=self._live, name="demo people", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, int | None]:
        """Stop the people's thread, then their phones; their exit statuses."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        return {p.name: p.phone.stop() for p in (self.bob, self.carol) if p.phone is not None}

    # -- the people's behaviour (their own thread) -----------------------
    def _live(self) -> None:
        people = [Behaviour(p, self._stopping) for p in (self.bob, self.carol)]
        start = time.monotonic()
        try:
            while not self._stopping.wait(POLL_S):
                elapsed = time.monotonic() - start
                for person in people:
                    person.answer_and_talk()
                    person.keep_rhythm(elapsed)
        except (OSError, ValueError) as exc:  # a person's phone went away
            if not self._stopping.is_set():
                log.error("demo people stopped: %s", exc)


class Behaviour:
    """One person's hands on their phone, from the people's thread."""

    def __init__(self, person: Person, stopping: threading.Event) -> None:
        self.person = person
        self.stopping = stopping
        self.ringing_since: float | None = None
        self.talking_since: float | None = None
        self.dnd = False

    def press(self, button: str) -> None:
        if self.person.phone is not None and not self.stopping.is_set():
            self.person.phone.press(button)

    def state(self) -> dict[str, Any]:
        assert self.person.phone is not None
        state: dict[str, Any] = self.person.phone.state()
        return state

    def keep_rhythm(self, elapsed: float) -> None:
        if self.person.rhythm.dnd(elapsed) != self.dnd:
            self.dnd = not self.dnd
            self.press("dnd")

    def answer_and_talk(self) -> None:
        calls = self.state()["calls"]
        now = time.monotonic()
        if any(c["direction"] == "in" and c["state"] == "ringing" for c in calls):
            self.ringing_since = self.ringing_since or now
            if now - self.ringing_since >= ANSWER_AFTER_S:
                log.info("demo: %s answers", self.person.name)
                self.press("answer")
        else:
            self.ringing_since = None
        if any(c["state"] == "confirmed" for c in calls):
            self.talking_since = self.talking_since or now
            if now - self.talking_since >= TALK_S:
                log.info("demo: %s hangs up", self.person.name)
                self.press("end")
        else:
            self.talking_since = None
