"""Message sessions in SDP: the m=message line of MSRP (RFC 4975 section 8, RFC 6135).

pjsua negotiates the audio; the MSRP line is ours. These are pure functions
over SDP text so the call code can use them from pjsua2's SDP callbacks:

* offer: pjsua is asked for two audio lines and the second is overwritten with
  `message_section(...)` (`replace_section`), because an appended m-line
  makes pjsua assert after the answer;
* answer: pjsua answers an offered m=message with port 0, and that line is
  replaced with `answer_section(...)`;
* both sides then read the peer's line with `find_message` and keep a
  `MessageSession` (local and remote path, accept types, who connects).

pjsua drops an SDP larger than about 1 KB (`wholeSdp` arrives empty), so
`trim` removes audio codecs until the text fits. Malformed SDP from the
network raises `SdpError`; the call code answers 488 then.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

SDP_LIMIT = 1000  # bytes: below pjsua's limit for wholeSdp, with room for the answer's growth
MSRP_PROTOCOLS = ("TCP/MSRP", "TCP/TLS/MSRP")
DEFAULT_ACCEPT_TYPES = ("message/cpim", "text/plain", "application/im-iscomposing+xml")
DEFAULT_WRAPPED_TYPES = ("text/plain", "application/im-iscomposing+xml")
_KEEP_PAYLOADS = ("telephone-event",)


class SdpError(ValueError):
    """The SDP is malformed or its message line is unusable (answer 488)."""


class SetupRole(StrEnum):
    """a=setup (RFC 4145 section 4): who opens the TCP connection."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"


@dataclass(frozen=True)
class MediaSection:
    """One m= section: its m-line fields and its other lines, in order."""

    kind: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    lines: tuple[str, ...]  # the lines after the m-line (c=, b=, a=...)

    def attributes(self, name: str) -> list[str]:
        prefix = f"a={name}:"
        return [line[len(prefix) :].strip() for line in self.lines if line.startswith(prefix)]

    def attribute(self, name: str) -> str | None:
        values = self.attributes(name)
        return values[0] if values else None


@dataclass(frozen=True)
class SessionDescription:
    session: tuple[str, ...]  # the lines before the first m-line
    media: tuple[MediaSection, ...]

    @classmethod
    def parse(cls, text: str) -> SessionDescription:
        lines = [line.rstrip("\r") for line in text.replace("\r\n", "\n").split("\n") if line]
        if not lines or not lines[0].startswith("v="):
            raise SdpError("SDP does not start with v=")
        session: list[str] = []
        media: list[tuple[str, list[str]]] = []
        for line in lines:
            if len(line) < 2 or line[1] != "=":
                raise SdpError(f"bad SDP line {line[:40]!r}")
            if line.startswith("m="):
                media.append((line, []))
            elif media:
                media[-1][1].append(line)
            else:
                session.append(line)
        return cls(tuple(session), tuple(_media(m, rest) for m, rest in media))

    def to_text(self) -> str:
        out = list(self.session)
        for section in self.media:
            out.append(_m_line(section))
            out.extend(section.lines)
        return "\r\n".join(out) + "\r\n"


@dataclass(frozen=True)
class MsrpMedia:
    """What one side's m=message line says (RFC 4975 section 8.1, RFC 6135)."""

    protocol: str
    port: int
    path: tuple[str, ...]
    accept_types: tuple[str, ...]
    accept_wrapped_types: tuple[str, ...]
    setup: SetupRole | None


@dataclass(frozen=True)
class MessageSession:
    """A negotiated message session of one call, as the MSRP layer needs it."""

    local_path: tuple[str, ...]
    remote_path: tuple[str, ...]
    accept_types: tuple[str, ...]  # what the peer accepts: what we may send
    accept_wrapped_types: tuple[str, ...]
    local_setup: SetupRole  # ACTIVE: we connect to the first hop of remote_path

    @property
    def we_connect(self) -> bool:
        return self.local_setup is SetupRole.ACTIVE


def local_msrp_path(host: str, port: int, protocol: str = "TCP/MSRP") -> str:
    """A fresh MSRP URI of ours (RFC 4975 section 9): session-id unique per session."""
    scheme = "msrps" if protocol == "TCP/TLS/MSRP" else "msrp"
    return f"{scheme}://{host}:{port}/{secrets.token_urlsafe(12)};tcp"


def message_section(
    path: tuple[str, ...],
    *,
    setup: SetupRole,
    accept_types: tuple[str, ...] = DEFAULT_ACCEPT_TYPES,
    accept_wrapped_types: tuple[str, ...] = DEFAULT_WRAPPED_TYPES,
    protocol: str = "TCP/MSRP",
    connection: str | None = None,
) -> MediaSection:
    """Our m=message section; the port is the one of our own (last) path hop."""
    if protocol not in MSRP_PROTOCOLS:
        raise SdpError(f"not an MSRP protocol: {protocol!r}")
    if not path:
        raise SdpError("an MSRP path needs at least one URI")
    port = _uri_port(path[-1])
    lines = [f"c={connection}"] if connection else []
    lines += [
        f"a=accept-types:{' '.join(accept_types)}",
        f"a=accept-wrapped-types:{' '.join(accept_wrapped_types)}",
        f"a=path:{' '.join(path)}",
        f"a=setup:{setup.value}",
    ]
    return MediaSection("message", port, protocol, ("*",), tuple(lines))


def answer_role(offered: SetupRole | None, live: SetupRole | None = None) -> SetupRole:
    """Our a=setup in an answer (RFC 6135 section 4.2; RFC 4975 section 5.4 without it).

    `live` is our role in the connection of a session the offer keeps (a
    re-INVITE with the same path): where the offer leaves the choice to us
    (actpass), the answer states that role, not a new one."""
    if offered is SetupRole.ACTIVE:
        return SetupRole.PASSIVE
    if offered is None:
        return SetupRole.PASSIVE  # RFC 4975: the offerer connects
    if offered is SetupRole.ACTPASS and live is not None:
        return live
    return SetupRole.ACTIVE


def with_setup(section: MediaSection, role: SetupRole) -> MediaSection:
    """Our message section stating `role` (a=setup) in place of what it said."""
    lines = tuple(line for line in section.lines if not line.startswith("a=setup:"))
    return MediaSection(
        section.kind, section.port, section.protocol, section.formats,
        (*lines, f"a=setup:{role.value}"),
    )  # fmt: skip


AnswerLines = Callable[[SessionDescription, "MediaSection"], tuple[str, ...]]
"""Given a chat offer and its m=message section: the lines to add to our
answer's section (RFC 5547 file attributes, a=recvonly, a=fingerprint), or
`SdpError` to refuse the offer with 488. A line replaces ours of the same
attribute (a file push answers `a=accept-types` with the file's type)."""


def with_lines(section: MediaSection, extra: tuple[str, ...]) -> MediaSection:
    """`section` with `extra` lines added, each in place of ours of the same attribute."""
    replaced = {line.split(":", 1)[0] for line in extra}
    kept = tuple(line for line in section.lines if line.split(":", 1)[0] not in replaced)
    return replace(section, lines=(*kept, *extra))


def find_message(sdp: SessionDescription) -> tuple[int, MsrpMedia] | None:
    """The index and content of the first usable m=message line, or None."""
    for index, section in enumerate(sdp.media):
        if section.kind != "message" or section.port == 0:
            continue
        if section.protocol not in MSRP_PROTOCOLS:
            raise SdpError(f"m=message with unsupported protocol {section.protocol!r}")
        path = tuple((section.attribute("path") or "").split())
        if not path or not all(p.startswith(("msrp://", "msrps://")) for p in path):
            raise SdpError("m=message without a valid a=path")
        setup_text = section.attribute("setup")
        try:
            setup = SetupRole(setup_text) if setup_text else None
        except ValueError as exc:
            raise SdpError(f"bad a=setup {setup_text!r}") from exc
        return index, MsrpMedia(
            protocol=section.protocol,
            port=section.port,
            path=path,
            accept_types=tuple((section.attribute("accept-types") or "").split()),
            accept_wrapped_types=tuple((section.attribute("accept-wrapped-types") or "").split()),
            setup=setup,
        )
    return None


def answer_section(
    offer: MsrpMedia,
    local_path: tuple[str, ...],
    accept_types: tuple[str, ...] = DEFAULT_ACCEPT_TYPES,
    accept_wrapped_types: tuple[str, ...] = DEFAULT_WRAPPED_TYPES,
    connection: str | None = None,
    live_setup: SetupRole | None = None,
) -> tuple[MediaSection, MessageSession]:
    """Our answer to an offered message line, and the session it makes;
    `live_setup` as in `answer_role`."""
    if not offer.accept_types:
        raise SdpError("offered m=message has no a=accept-types (RFC 4975 section 8.6)")
    role = answer_role(offer.setup, live_setup)
    section = message_section(
        local_path,
        setup=role,
        accept_types=accept_types,
        accept_wrapped_types=accept_wrapped_types,
        protocol=offer.protocol,
        connection=connection,
    )
    session = MessageSession(
        local_path, offer.path, offer.accept_types, offer.accept_wrapped_types, role
    )
    return section, session


def offered_session(offered: MediaSection, answer: MsrpMedia) -> MessageSession:
    """The session our offer `offered` made once the peer answered with `answer`."""
    our_setup = SetupRole(offered.attribute("setup") or SetupRole.ACTPASS.value)
    if our_setup is SetupRole.ACTPASS:
        # The answerer picked; no a=setup in the answer means it waits (RFC 4975).
        local = SetupRole.PASSIVE if answer.setup is SetupRole.ACTIVE else SetupRole.ACTIVE
    else:
        local = our_setup
    local_path = tuple((offered.attribute("path") or "").split())
    return MessageSession(
        local_path, answer.path, answer.accept_types, answer.accept_wrapped_types, local
    )


def replace_section(
    sdp: SessionDescription, index: int, section: MediaSection
) -> SessionDescription:
    """The SDP with its `index`-th m-section replaced (pjsua keeps the count of lines)."""
    if not 0 <= index < len(sdp.media):
        raise SdpError(f"no m-section {index}")
    media = list(sdp.media)
    media[index] = section
    return SessionDescription(sdp.session, tuple(media))


def trim(sdp: SessionDescription, limit: int = SDP_LIMIT) -> SessionDescription:
    """Drop the last audio codecs (keeping one and telephone-event) until the text fits."""
    while len(sdp.to_text().encode()) > limit:
        media = list(sdp.media)
        for index, section in enumerate(media):
            droppable = [f for f in section.formats if not _keeps(section, f)]
            if section.kind == "audio" and len(droppable) > 1:
                media[index] = _drop_format(section, droppable[-1])
                break
        else:
            raise SdpError(f"SDP of {len(sdp.to_text())} bytes cannot be trimmed to {limit}")
        sdp = SessionDescription(sdp.session, tuple(media))
    return sdp


def _keeps(section: MediaSection, fmt: str) -> bool:
    rtpmap = next((a for a in section.attributes("rtpmap") if a.split()[0] == fmt), "")
    return any(name in rtpmap for name in _KEEP_PAYLOADS)


def _drop_format(section: MediaSection, fmt: str) -> MediaSection:
    lines = tuple(
        line
        for line in section.lines
        if not line.startswith((f"a=rtpmap:{fmt} ", f"a=fmtp:{fmt} ", f"a=rtcp-fb:{fmt} "))
    )
    formats = tuple(f for f in section.formats if f != fmt)
    return MediaSection(section.kind, section.port, section.protocol, formats, lines)


def _media(m_line: str, rest: list[str]) -> MediaSection:
    fields = m_line[2:].split()
    if len(fields) < 4:
        raise SdpError(f"bad m-line {m_line[:60]!r}")
    port_text = fields[1].split("/", 1)[0]
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SdpError(f"bad port in m-line {m_line[:60]!r}")
    return MediaSection(fields[0], int(port_text), fields[2], tuple(fields[3:]), tuple(rest))


def _m_line(section: MediaSection) -> str:
    return f"m={section.kind} {section.port} {section.protocol} {' '.join(section.formats)}"


def _uri_port(uri: str) -> int:
    authority = uri.split("://", 1)[-1].split("/", 1)[0]
    port = authority.rsplit(":", 1)[-1] if ":" in authority else ""
    if not port.isdigit():
        raise SdpError(f"MSRP URI without a port: {uri!r}")
    return int(port)
