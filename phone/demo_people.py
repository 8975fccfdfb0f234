"""The people in `phone emulator --demo`: Bob and Carol, with phones of their
own, and the room "Team" they are in.

The emulator's demo shows alice's phone with no server and no config. Her
contacts are two more phones beside it on loopback, in direct mode, on the
project's own SIP stack: virtual boards in child processes (`RemotePhone`,
one pjsua endpoint per process), like `phone demo`'s. One thread of the
emulator's process plays the people by driving their control interfaces; it
touches nothing of alice's phone, whose state stays on its loop thread.

- Both answer a call after ANSWER_AFTER_S of ringing and hang up after
  TALK_S. Bob talks (espeak-ng into his microphone where it is installed, else
  a pattern of tones). For the last quarter of every minute he has DND on.
- Carol is often away: DND on for 35 s of every 50 s. She writes to alice
  `chat_after_s` after alice's phone is up (`alice_started`; CHAT_AFTER_S by
  default), then every CHAT_EVERY_S: a pager MESSAGE (RFC 3428) from her
  phone, sent through her control interface's `message`, which alice's chat
  plugin shows.
- "Team" is a room on a conference focus (phone.demo_focus, in this process on
  its own thread, direct mode) with Bob and Carol in it; alice's third button
  calls it, and her conference plugin shows the three of them.

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
from phone.demo_focus import Focus
from phone.remote import RemotePhone
from phone.uri import parse_sip_uri

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
CHAT_AFTER_S = 20.0  # Carol's first message, after alice's phone is up
CHAT_EVERY_S = 90.0  # and her next ones
CAROL_SAYS = (
    "Away from my desk, call me after lunch",
    "Are you joining Team later?",
    "Back at my desk in ten minutes",
)
ROOM_USER = "team"  # the room's user part at the focus
ROOM_NAME = "Team"
# The alice config's plugins: the chat shows Carol's messages, the conference the room.
PLUGINS = ("chat", "conference")


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
    says: tuple[str, ...] = ()  # what the person writes to alice, in turn
    phone: RemotePhone | None = None

    @property
    def uri(self) -> str:
        return loopback_uri(self.name.lower(), self.port)

    @property
    def aor(self) -> str:
        """Without the port: how a room lists the person once they dial in."""
        return parse_sip_uri(self.uri).aor

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
    """Bob, Carol and their room: start them, let them live, stop them."""

    def __init__(self, workdir: Path, chat_after_s: float = CHAT_AFTER_S) -> None:
        self.workdir = workdir
        self.chat_after_s = chat_after_s
        self.alice_port = free_port()
        self.bob = Person("Bob", free_port(), Rhythm(60.0, 15.0, dnd_first=False))
        self.carol = Person(
            "Carol", free_port(), Rhythm(50.0, 35.0, dnd_first=True), says=CAROL_SAYS
        )
        self.focus = Focus(None, {ROOM_USER: ROOM_NAME})
        self._stopping = threading.Event()
        self._alice_up: float | None = None  # time.monotonic() when alice's phone was up
        self._thread: threading.Thread | None = None

    @property
    def alice_uri(self) -> str:
        return loopback_uri("alice", self.alice_port)

    def alice_config(self, sound: str) -> Path:
        """alice's TOML: an emulator board, Bob and Carol on the first buttons,
        then Team (once `start` has started the focus)."""
        return phone_config(
            "alice",
            self.alice_port,
            [self.bob.contact, self.carol.contact],
            self.workdir,
            board="emulator",
            board_settings={"sound": sound},
            rooms=[(ROOM_NAME, self.focus.room_uri(ROOM_USER))],
            plugins=PLUGINS,
        )

    def start(self) -> None:
        self.focus.start()
        for person in (self.bob, self.carol):
            self.focus.add_guest(ROOM_USER, person.aor, person.name)
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
            "demo people up: Bob (%s, talks with %s), Carol (%s), room %s",
            self.bob.uri,
            voice,
            self.carol.uri,
            self.focus.room_uri(ROOM_USER),
        )
        self._thread = threading.Thread(target=self._live, name="demo people", daemon=True)
        self._thread.start()

    def alice_started(self) -> None:
        """alice's phone is up: Carol's chat clock starts (called on alice's loop thread)."""
        self._alice_up = time.monotonic()

    def stop(self) -> dict[str, int | None]:
        """Stop the people's thread, their phones, then the room; the phones' exit statuses."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        try:
            return {p.name: p.phone.stop() for p in (self.bob, self.carol) if p.phone is not None}
        finally:
            self.focus.stop()

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
                    if self._alice_up is not None:
                        since_up = time.monotonic() - self._alice_up
                        person.write(since_up, self.alice_uri, self.chat_after_s)
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
        self.written = 0  # messages sent so far

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

    def write(self, since_up: float, to: str, first_s: float) -> None:
        """The next of the person's lines, when due: `first_s` after alice's phone
        was up, then every CHAT_EVERY_S."""
        if not self.person.says or since_up < first_s + self.written * CHAT_EVERY_S:
            return
        text = self.person.says[self.written % len(self.person.says)]
        self.written += 1
        if self.person.phone is None or self.stopping.is_set():
            return
        answer = self.person.phone.request(cmd="message", to=to, text=text)
        if answer.get("status") == 200:
            log.info("demo: %s wrote to alice", self.person.name)
        else:
            log.warning("demo: %s's message to alice: %s", self.person.name, answer)

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
