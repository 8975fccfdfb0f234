"""The message (MSRP) stream of one pjsua2 call: SDP rewriting in its callbacks.

pjsua2 knows nothing of m=message, so `SipCall` hands two of its callbacks to
a `CallMessageStream` (behaviour measured on the 2.15.1 wheel):

* `onCallSdpCreated`: as offerer (the call was made with
  `CallSetting.audioCount = 2`, see `offer_call_setting`), the second audio
  line pjsua made is overwritten with our m=message line; as answerer, the
  m=message line pjsua answered with port 0 is replaced by our answer. The SDP
  is trimmed to stay below pjsua's size limit. This runs again for every
  re-INVITE: once a session is agreed, our re-offer (hold, say) keeps its path
  and our role in it, where pjsua would put the line at port 0 and end it.
* `onCallTsxState`: the answer to our offer is only readable in the INVITE's
  2xx (`e.body.tsxState.src.rdata.wholeMsg`).

After either, `session` holds the negotiated `MessageSession` (and
`remote_sdp` the peer's SDP, whose a=fingerprint an msrps connection
checks), or None when the peer declined the message stream. A later offer
or answer naming another peer path is a move (RFC 4975 section 8.4: the
old path may be gone): our path stays, the answer takes the role of a new
connection, and `CallChat.on_moved` is told. A re-offer in another
protocol (TCP/MSRP <-> TCP/TLS/MSRP, RFC 4975 section 8.5) moves the
session to a new path of ours in that protocol, or, where we have none,
is declined (port 0). The stream ends, `CallChat.on_ended` told, when the
peer's offer sets its line to port 0 or is declined so; `end()` ends it
from our side. Once ended, our offers keep the line at port 0 (RFC 3264
section 8.2); a peer's offer of a live line starts it again, told as a
move. A malformed message line in a peer's
offer declines that stream only (pjsua's port-0 answer stays, RFC 3264
section 6) and the audio call goes on; `on_sdp_created` raises `SdpError`
only when pjsua's own SDP is unusable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pjsua2 as pj

from phone.sip.message import MessageError, SipMessage
from phone.sip.sdp import (
    DEFAULT_ACCEPT_TYPES,
    DEFAULT_WRAPPED_TYPES,
    AnswerLines,
    MediaSection,
    MessageSession,
    SdpError,
    SessionDescription,
    SetupRole,
    answer_section,
    find_message,
    message_section,
    offered_session,
    replace_section,
    trim,
    with_lines,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallChat:
    """What a plugin that carries chat in calls gives every call's stream.

    `local_path(protocol)` gives our MSRP path for a new session (the MSRP
    layer listens there; `SdpError` when it has none in that protocol);
    `answer_lines` adds lines to our answer (a=fingerprint for msrps);
    `on_moved(call_id, session)`: the peer's path changed, or the stream
    started again, so the connection must be made anew (RFC 4975 section
    8.4); `on_ended(call_id)`: the peer's offer closed the stream."""

    local_path: Callable[[str], tuple[str, ...]]
    on_moved: Callable[[int, MessageSession], None] | None = None
    answer_lines: AnswerLines | None = None
    on_ended: Callable[[int], None] | None = None


def offer_call_setting(setting: Any) -> Any:
    """Ask pjsua for the second media line that `on_sdp_created` turns into m=message."""
    setting.audioCount = 2
    return setting


class CallMessageStream:
    """Offers or answers the m=message line of one call and keeps what was agreed."""

    def __init__(
        self,
        local_path: Callable[[str], tuple[str, ...]],
        *,
        offer: bool,
        accept_types: tuple[str, ...] = DEFAULT_ACCEPT_TYPES,
        accept_wrapped_types: tuple[str, ...] = DEFAULT_WRAPPED_TYPES,
        protocol: str = "TCP/MSRP",
        answer_lines: AnswerLines | None = None,
        on_moved: Callable[[MessageSession], None] | None = None,
        on_ended: Callable[[], None] | None = None,
    ) -> None:
        """`local_path`, `answer_lines` as in `CallChat`; `offer` says whether we
        add the line to our INVITE; `on_moved(session)` and `on_ended()` are
        called inside pjsua's callbacks."""
        self._local_path = local_path
        self._offer = offer
        self._accept_types = accept_types
        self._accept_wrapped_types = accept_wrapped_types
        self._protocol = protocol
        self._answer_lines = answer_lines
        self._on_moved = on_moved
        self._on_ended = on_ended
        self._offered: MediaSection | None = None
        self._line: tuple[int, str] | None = None  # the agreed line's index and protocol
        self._ended = False  # the stream was ended: our offers keep the line at port 0
        self.session: MessageSession | None = None
        self.remote_sdp: SessionDescription | None = None

    def on_sdp_created(self, prm: Any) -> None:
        """From `Call.onCallSdpCreated(prm)`: rewrite `prm.sdp.wholeSdp`."""
        if not prm.sdp.wholeSdp:
            raise SdpError(
                "pjsua passed no SDP: it is over pjsua's size limit, enable fewer codecs"
            )
        local = SessionDescription.parse(prm.sdp.wholeSdp)
        remote_text = prm.remSdp.wholeSdp
        if remote_text:
            try:
                local = self._answer(SessionDescription.parse(remote_text), local)
            except SdpError as exc:
                log.warning("declining the offered message stream: %s", exc)
                self._over()
        elif self._ended and self._line is not None:
            local = self._closed(local, *self._line)
        elif self.session is not None and self._line is not None:
            local = self._reoffer(local, self.session, *self._line)
        elif self._offer:
            local = self._make_offer(local)
        prm.sdp.wholeSdp = trim(local).to_text()

    def end(self) -> bool:
        """End the agreed stream from our side: our offers from now on have the
        line at port 0 (RFC 3264 section 8.2), so the peer learns it is over
        once the caller sends a new offer. False when there is none to end."""
        if self.session is None or self._line is None:
            return False
        log.info("message session ended by us: its line goes to port 0")
        self.session, self._offered, self._ended = None, None, True
        return True

    @property
    def ended(self) -> bool:
        """Whether the stream is ended, by `end()` or the peer, and not started again."""
        return self._ended

    def on_tsx_state(self, prm: Any) -> None:
        """From `Call.onCallTsxState(prm)`: read the peer's answer in the INVITE's 2xx."""
        if self._offered is None or prm.e.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx_state = prm.e.body.tsxState
        if tsx_state.type != pj.PJSIP_EVENT_RX_MSG or tsx_state.tsx.method != "INVITE":
            return
        if not 200 <= tsx_state.tsx.statusCode < 300:
            return
        try:
            response = SipMessage.parse(tsx_state.src.rdata.wholeMsg.encode())
            answer = SessionDescription.parse(response.body.decode())
            found = find_message(answer)
        except (MessageError, SdpError, UnicodeDecodeError) as exc:
            log.warning("the answer's message line is unusable: %s", str(exc))
            return
        if found is None:
            log.info("the peer declined the message stream")
            self.session = None
            return
        self.remote_sdp = answer
        self._agreed(offered_session(self._offered, found[1]))

    def _make_offer(self, local: SessionDescription) -> SessionDescription:
        if self._offered is None:
            self._offered = message_section(
                self._local_path(self._protocol),
                setup=SetupRole.ACTPASS,
                accept_types=self._accept_types,
                accept_wrapped_types=self._accept_wrapped_types,
                protocol=self._protocol,
            )
        audio = [i for i, s in enumerate(local.media) if s.kind == "audio"]
        if len(audio) < 2:
            raise SdpError("the call was not made with offer_call_setting()")
        self._line = (audio[-1], self._protocol)
        return replace_section(
            local, audio[-1], _with_connection(self._offered, local.media[audio[-1]])
        )

    def _reoffer(
        self, local: SessionDescription, session: MessageSession, index: int, protocol: str
    ) -> SessionDescription:
        """Our offer in a re-INVITE once a session is agreed: the same path, so the
        session goes on (RFC 4975 section 8.4), and our role in its connection.
        pjsua's own offer has the line at port 0 where it answered one."""
        if index >= len(local.media):
            raise SdpError("pjsua's offer lost the message line")
        self._offered = message_section(
            session.local_path,
            setup=session.local_setup,
            accept_types=self._accept_types,
            accept_wrapped_types=self._accept_wrapped_types,
            protocol=protocol,
        )
        return replace_section(local, index, _with_connection(self._offered, local.media[index]))

    def _closed(self, local: SessionDescription, index: int, protocol: str) -> SessionDescription:
        """`local` with our message line at port 0: the stream stays closed
        (RFC 3264 sections 6 and 8.2: the line keeps its place and its type)."""
        if index >= len(local.media):
            raise SdpError("pjsua's SDP lost the message line")
        closed = MediaSection("message", 0, protocol, ("*",), ())
        return replace_section(local, index, _with_connection(closed, local.media[index]))

    def _answer(self, remote: SessionDescription, local: SessionDescription) -> SessionDescription:
        found = find_message(remote)
        if found is None:
            if self.session is not None:
                log.info("message session ended by the peer: its line is at port 0")
                self._over()
            return local
        index, offer = found
        if index >= len(local.media) or local.media[index].kind != "message":
            raise SdpError("pjsua's answer has no message line where the offer had one")
        live = self.session
        if live is not None and self._line is not None and self._line[1] != offer.protocol:
            log.info("message session: the peer changes to %s", offer.protocol)
            live = None  # a connection in the other protocol, from a path of ours in it
        path = live.local_path if live else self._local_path(offer.protocol)
        # A re-offer of the same path keeps the session and its connection (RFC 4975 8.4).
        live_setup = live.local_setup if live and live.remote_path == offer.path else None
        section, session = answer_section(
            offer, path, self._accept_types, self._accept_wrapped_types, live_setup=live_setup
        )
        if self._answer_lines is not None:
            section = with_lines(section, self._answer_lines(remote, remote.media[index]))
        self._line = (index, offer.protocol)
        self.remote_sdp = remote
        self._agreed(session)
        return replace_section(local, index, _with_connection(section, local.media[index]))

    def _agreed(self, session: MessageSession) -> None:
        """`session` is what the last offer and answer agreed; a new path, ours or
        the peer's, or a stream started again, is a move."""
        live, self.session = self.session, session
        again, self._ended = self._ended, False
        path = " ".join(session.remote_path)
        same = live is not None and (live.remote_path, live.local_path) == (
            session.remote_path, session.local_path
        )  # fmt: skip
        if not again and (live is None or same):
            log.info("message session agreed: remote path %s", path)
            return
        log.info("message session moved: remote path %s, we %s", path,
                 "connect" if session.we_connect else "wait for its connection")  # fmt: skip
        if self._on_moved is not None:
            self._on_moved(session)

    def _over(self) -> None:
        """The peer's offer ended the stream (its line at port 0, or one we declined)."""
        if self.session is None:
            return
        self.session, self._offered, self._ended = None, None, True
        if self._on_ended is not None:
            self._on_ended()


def _with_connection(section: MediaSection, replaced: MediaSection) -> MediaSection:
    """`section` carrying the c= line of the section it replaces, if it had one."""
    connection = [line for line in replaced.lines if line.startswith("c=")]
    if not connection or any(line.startswith("c=") for line in section.lines):
        return section
    return replace(section, lines=(connection[0], *section.lines))
