"""The demo focus's side of the offer/answer exchange with one participant (RFC 3264).

A call's SDP is not said once: a re-INVITE (RFC 3261 section 14) brings a new
offer (a session refresh, hold and resume, a codec change) or none, and then
the focus's 200 must carry an offer. `FocusSdp` remembers what the focus last
said in the call so each new answer or offer fits the session:

* the same `o=` line, its version one up whenever the SDP changes (RFC 3264
  section 8);
* the same m-lines in the same order, refused lines refused again;
* the audio codec kept while the offer still has it, and the direction
  answered (sendonly gets recvonly, RFC 3264 section 8.4);
* the chat's message line as the focus gives it (the `Focus` decides whether
  the MSRP session goes on, RFC 4975 section 8.4).

The focus mixes no media: the audio port is a socket that drops what it gets.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from phone.sip.sdp import MediaSection, SessionDescription

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3264 section 6.1: the answer's direction for each offered one.
_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
# What the focus offers when it dials out: PCMU (RFC 3551 static payload type 0).
DIAL_OUT_AUDIO = ("0", ("a=rtpmap:0 PCMU/8000",))


def direction(sdp: SessionDescription, section: MediaSection) -> str:
    """A media line's direction: its own attribute, else the session's (RFC 4566 section 6)."""
    for lines in (section.lines, sdp.session):
        found = [line[2:] for line in lines if line[2:] in DIRECTIONS]
        if found:
            return found[-1]
    return "sendrecv"


def _format_lines(section: MediaSection, fmt: str) -> tuple[str, ...]:
    """The a=rtpmap and a=fmtp lines of payload type `fmt` in `section`."""
    return tuple(
        line for line in section.lines if line.startswith((f"a=rtpmap:{fmt} ", f"a=fmtp:{fmt} "))
    )


def _refused(section: MediaSection) -> MediaSection:
    return MediaSection(section.kind, 0, section.protocol, section.formats, ())


@dataclass
class FocusSdp:
    """What the focus said in one call, to answer or offer again consistently."""

    address: str  # of the focus, where its audio socket listens
    audio_port: int
    session_id: int = field(default_factory=lambda: secrets.randbelow(2**31))
    version: int = 0
    audio: tuple[str, tuple[str, ...]] | None = None  # payload type agreed, its a= lines
    media: tuple[MediaSection, ...] = ()  # our last m-sections, in order
    offered_direction: str = "sendrecv"  # the audio direction the peer last asked for

    def answer(self, offer: SessionDescription, chat: MediaSection | None) -> bytes:
        """Our answer to `offer`: its audio line taken, `chat` (our message line)
        for its message line, every other line refused (port 0)."""
        media: list[MediaSection] = []
        for section in offer.media:
            if (
                section.kind == "audio"
                and section.port
                and section.formats
                and not any(m.kind == "audio" and m.port for m in media)
            ):
                if self.audio is not None and self.audio[0] in section.formats:
                    fmt, lines = self.audio[0], _format_lines(section, self.audio[0])
                    self.audio = (fmt, lines or self.audio[1])
                else:  # the offerer's first choice (RFC 3264 section 6.1)
                    fmt = section.formats[0]
                    self.audio = (fmt, _format_lines(section, fmt))
                self.offered_direction = direction(offer, section)
                answered = _ANSWER_DIRECTION[self.offered_direction]
                media.append(self._audio_section(answered))
            elif section.kind == "message" and section.port and chat is not None:
                media.append(chat)
                chat = None  # one chat stream per call
            else:
                media.append(_refused(section))
        return self._said(tuple(media))

    def offer(self, chat: MediaSection | None) -> bytes:
        """Our offer: the first one (audio and `chat`), or a new one in the same
        m-lines as we last said, audio sendrecv and `chat` in the message line."""
        self.audio = self.audio or DIAL_OUT_AUDIO
        if not self.media:
            media = [self._audio_section("sendrecv")]
            if chat is not None:
                media.append(chat)
            return self._said(tuple(media))
        again: list[MediaSection] = []
        for section in self.media:
            if section.kind == "audio" and section.port:
                again.append(self._audio_section("sendrecv"))
            elif section.kind == "message" and chat is not None:
                again.append(chat)
                chat = None
            else:
                again.append(_refused(section))
        return self._said(tuple(again))

    def _audio_section(self, way: str) -> MediaSection:
        assert self.audio is not None
        fmt, lines = self.audio
        return MediaSection("audio", self.audio_port, "RTP/AVP", (fmt,), (*lines, f"a={way}"))

    def _said(self, media: tuple[MediaSection, ...]) -> bytes:
        """The SDP text of `media`, the version one up if it differs from the last."""
        if media != self.media or not self.version:
            self.version += 1
        self.media = media
        session = (
            "v=0",
            f"o=focus {self.session_id} {self.version} IN IP4 {self.address}",
            "s=focus",
            f"c=IN IP4 {self.address}",
            "t=0 0",
        )
        return SessionDescription(session, media).to_text().encode()
