"""Chat-only sessions: INVITEs whose only media line is m=message, both ways.

Blink starts a chat with an INVITE that offers only `m=message` (RFC 4975).
pjsua rejects it with 488 before any pjsua2 callback runs, so it is taken
earlier: the `RawSip` request hook (priority 31) claims such an INVITE and
answers it through pjsip's own invite-session API, all exported functions:
`pjsip_dlg_create_uas_and_inc_lock`, `pjsip_inv_create_uas` with our SDP
(parsed by `pjmedia_sdp_parse`), `pjsip_inv_initial_answer` 200 and
`pjsip_inv_send_msg`. pjsip then runs the dialog (ACK, re-INVITE, BYE).

The fragile part: pjsip has one table of invite-session callbacks, filled by
pjsua (`pjsip_inv_usage_init`), and pjsua's callbacks dereference the
pjsua call that every session is supposed to have; for ours there is none.
`InviteCallbackTable` therefore wraps pjsua's entries in that private table,
once `phone.sip.layout.invite_callback_table` has checked it, so our sessions
reach our handlers and all others reach pjsua unchanged. For each session we
check that `inv->state` reads NULL after creation and CONNECTING after our 200.

Offering uses the same API the other way round (`pjsip_dlg_create_uac`,
`pjsip_inv_create_uac`, `pjsip_inv_invite`); the answer is read from the 2xx
in `on_tsx_state_changed`. pjsip would answer a 401/407 from the dialog's
credentials, which live in the private `dlg->auth_sess` (and a
`pjsip_cred_info` whose layout changed in 2.15); instead the challenged
session ends and the INVITE is sent once more, in a new dialog, with an
Authorization computed by `phone.sip.digest`.

RFC 3264 section 8 wants every later SDP of a session to keep its o= line,
the version one up exactly when the SDP changed. pjmedia's negotiator keeps
the id and steps the version, but compares only direction, rtpmap and fmtp
attributes, which an m=message answer rarely changes; `on_media_update`
steps it where pjmedia missed a change (through `inv->neg` at its 2.15.1
offset; what it reads there must match the printed SDP, or o= lines are
left to pjmedia, with an error logged).

If a check fails, this capability alone is turned off: `available` is False,
`unavailable_reason` says why (for the log and the screen), and chat-only
offers keep getting pjsua's 488. The table is restored by `close()`, which
must run before `libDestroy`.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import secrets
from collections.abc import Callable
from ctypes import byref
from ctypes import c_void_p as VoidP
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from phone import pjproject
from phone.pjproject import (
    INV_CALLBACK_TYPES,
    INV_CALLBACKS,
    INV_STATE_CONFIRMED,
    INV_STATE_CONNECTING,
    INV_STATE_DISCONNECTED,
    INV_STATE_NULL,
    REDIRECT_REJECT,
    LayoutError,
    inv_state,
    make_pj_str,
)
from phone.pjsua_callback import c_callback
from phone.sip.digest import DigestChallenge
from phone.sip.identity import Identity
from phone.sip.layout import invite_callback_table
from phone.sip.message import MessageError, SipMessage
from phone.sip.rawsip import RawSip, Responder
from phone.sip.sdp import (
    DEFAULT_ACCEPT_TYPES,
    DEFAULT_WRAPPED_TYPES,
    AnswerLines,
    MediaSection,
    MessageSession,
    SdpError,
    SessionDescription,
    SetupRole,
    answer_role,
    answer_section,
    find_message,
    message_section,
    offered_session,
    with_lines,
    with_setup,
)

log = logging.getLogger(__name__)

SDP_PRINT_ROOM = 4096  # bytes: pjsip takes no larger SIP message on the wheel

# What each wrapper returns for our sessions when we have nothing to do.
_OUR_DEFAULT: dict[str, int | None] = {"on_rx_reinvite": 1, "on_redirected": REDIRECT_REJECT}


class ChatUnavailable(RuntimeError):
    """Chat-only sessions are off (see `ChatSessions.unavailable_reason`)."""


class ChatSessionState(StrEnum):
    CALLING = "calling"  # our INVITE is out
    CONNECTING = "connecting"  # our 200 is out, no ACK yet
    CONFIRMED = "confirmed"
    ENDED = "ended"


class InviteCallbackTable:
    """pjsua's entries in pjsip's `mod_inv.cb`, wrapped so that our sessions bypass pjsua."""

    def __init__(self, handlers: Any) -> None:
        self._handlers = handlers
        self.ours: set[int] = set()
        self._address, self._original = invite_callback_table()
        self._wrappers: dict[str, Any] = {}
        for name in sorted(name for name, address in self._original.items() if address):
            kind = INV_CALLBACK_TYPES[name]
            route = self._route(name, ctypes.cast(self._original[name], kind))
            # A failure is logged and pjsip gets the default (phone.pjsua_callback):
            # on_rx_offer2 then sets no answer, and pjsip refuses the re-offer
            # 488, the session staying as it was (RFC 3261 section 14.2).
            default = _OUR_DEFAULT.get(name)
            self._wrappers[name] = c_callback(kind, route, default, owner=self, name=name)
        slots = self._slots()
        for name, wrapper in self._wrappers.items():
            slots[INV_CALLBACKS.index(name)] = ctypes.cast(wrapper, VoidP).value

    def _slots(self) -> Any:
        return (VoidP * len(INV_CALLBACKS)).from_address(self._address)

    def _route(self, name: str, original: Any) -> Callable[..., Any]:
        """pjsip's callback `name`: our handler for our sessions, pjsua's for the rest."""
        ours_handler = getattr(self._handlers, name, None)
        default = _OUR_DEFAULT.get(name)

        def route(inv: int, *args: Any) -> Any:
            if inv not in self.ours:
                return original(inv, *args)
            return ours_handler(inv, *args) if ours_handler else default

        return route

    def restore(self) -> None:
        slots = self._slots()
        for name in self._wrappers:
            slots[INV_CALLBACKS.index(name)] = self._original[name]
        self._wrappers.clear()


@dataclass
class ChatSession:
    """One chat-only session we answered: what the MSRP layer needs, and how to end it."""

    call_id: str
    remote_uri: str
    message: MessageSession | None  # None until the peer answered our offer
    state: ChatSessionState
    _inv: int
    _pool: int
    _sdp: int
    remote_sdp: SessionDescription | None = None  # the peer's offer or answer (file attributes)
    _section: MediaSection | None = None  # our m=message line, as last sent
    _version: int | None = None  # the o= version of the SDP we last sent
    _answer_changed: bool | None = None  # our answer to a re-offer differs from it


@dataclass
class _Offer:
    """What a chat-only offer of ours needs to be sent again after a challenge."""

    identity: Identity
    section: MediaSection
    challenge: tuple[str, DigestChallenge] | None = None
    authorized: bool = False


class ChatSessions:
    """Answers chat-only INVITEs; reports sessions as they start and end, on the loop."""

    def __init__(
        self,
        raw: RawSip,
        loop: asyncio.AbstractEventLoop,
        contact: str,
        local_path: Callable[[str], tuple[str, ...]],
        on_session: Callable[[ChatSession], None],
        on_end: Callable[[ChatSession], None],
        accept_types: tuple[str, ...] = DEFAULT_ACCEPT_TYPES,
        accept_wrapped_types: tuple[str, ...] = DEFAULT_WRAPPED_TYPES,
        answer_lines: AnswerLines | None = None,
        on_moved: Callable[[ChatSession], None] | None = None,
    ) -> None:
        """`on_moved(session)`: the peer's re-offer changed its MSRP path (RFC 4975
        section 8.4): `session.message` holds the new path and who connects."""
        self._raw = raw
        self._answer_lines = answer_lines
        self._lib = pjproject.library()
        self._loop = loop
        self._contact = contact
        self._local_path = local_path
        self._on_session = on_session
        self._on_end = on_end
        self._on_moved = on_moved
        self._accept_types = accept_types
        self._accept_wrapped_types = accept_wrapped_types
        self._sessions: dict[int, ChatSession] = {}
        self._announced: set[int] = set()  # sessions `on_session` was told of
        self._offers: dict[int, _Offer] = {}
        self._table: InviteCallbackTable | None = None
        self._origin_checked = True  # pjmedia's o= line reads as printed (on_media_update)
        self.unavailable_reason: str | None = None
        try:
            self._table = InviteCallbackTable(self)
        except LayoutError as exc:
            self._disable(str(exc))
            return
        raw.on_request("INVITE", self._on_invite)
        log.info("chat-only sessions enabled (pjsip invite callbacks checked and wrapped)")

    @property
    def available(self) -> bool:
        return self._table is not None and self.unavailable_reason is None

    @property
    def sessions(self) -> tuple[ChatSession, ...]:
        return tuple(self._sessions.values())

    def _disable(self, reason: str) -> None:
        """Stop taking chat INVITEs; the wrappers stay until `close()` for live sessions."""
        self.unavailable_reason = reason
        log.error("chat-only sessions are off, chat INVITEs get 488: %s", reason)
        if self._table is not None:
            self._raw.remove_handler("INVITE", self._on_invite)

    # ------------------------------------------------------------------ answering

    def _on_invite(self, message: SipMessage, respond: Responder) -> bool:
        if message.to.tag or message.content_type != "application/sdp":
            return False
        try:
            offer = SessionDescription.parse(message.body.decode())
            found = find_message(offer)
        except (SdpError, UnicodeDecodeError) as exc:
            if not _only_message_lines(message.body):
                return False  # pjsua's: it answers the audio and declines what it cannot read
            log.warning("chat INVITE with bad SDP: %s", exc)
            respond(488)
            return True
        if found is None or any(s.port != 0 for s in offer.media if s.kind != "message"):
            return False  # not chat-only: pjsua's (an audio call, maybe with a message line)
        index, media = found
        try:
            extra = self._answer_lines(offer, offer.media[index]) if self._answer_lines else ()
            path = self._local_path(media.protocol)
            section, session = answer_section(
                media, path, self._accept_types, self._accept_wrapped_types
            )
        except SdpError as exc:
            log.warning("chat INVITE from %s: %s", message.from_.uri, exc)
            respond(488)
            return True
        section = with_lines(section, extra)
        self._answer(message, respond.rdata, section, session, offer)
        return True

    def _answer(
        self,
        message: SipMessage,
        rdata: int,
        section: MediaSection,
        session: MessageSession,
        offer: SessionDescription,
    ) -> None:
        c = self._lib
        pool = c.pjsua_pool_create(b"chat", 4096, 4096)
        try:
            sdp = self._parse_sdp(pool, _chat_sdp(section))
        except SdpError:
            c.pj_pool_release(pool)
            raise
        keep: list[Any] = []
        dialog = VoidP()
        status = c.pjsip_dlg_create_uas_and_inc_lock(
            c.pjsip_ua_instance(), rdata, byref(make_pj_str(self._contact, keep)), byref(dialog)
        )
        if status != 0:
            c.pj_pool_release(pool)
            log.error("chat INVITE: pjsip_dlg_create_uas failed (%d)", status)
            return
        inv = VoidP()
        try:
            status = c.pjsip_inv_create_uas(dialog, rdata, sdp, 0, byref(inv))
            if status != 0 or not inv.value:
                log.error("chat INVITE: pjsip_inv_create_uas failed (%d)", status)
                c.pj_pool_release(pool)
                return
            handle = self._adopt(inv)
            chat = ChatSession(
                call_id=message.call_id,
                remote_uri=message.from_.uri,
                message=session,
                state=ChatSessionState.CONNECTING,
                _inv=handle,
                _pool=pool,
                _sdp=sdp,
                remote_sdp=offer,
                _section=section,
            )
            self._sessions[handle] = chat
            if inv_state(handle) != INV_STATE_NULL:
                self._disable("pjsip_inv_session.state is not where 2.15.1 has it")
                self._refuse(handle, rdata)
                return
            tdata = VoidP()
            status = c.pjsip_inv_initial_answer(handle, rdata, 200, None, None, byref(tdata))
            if status == 0:
                status = c.pjsip_inv_send_msg(handle, tdata)
            if status != 0:
                log.error("chat INVITE: sending 200 failed (%d)", status)
                c.pjsip_inv_terminate(handle, 500, 1)
                return
            if inv_state(handle) != INV_STATE_CONNECTING:
                self._disable("pjsip_inv_session.state did not become CONNECTING")
                self.end(chat)
                return
            log.info("chat session from %s answered", chat.remote_uri)
            self._loop.call_soon(self._on_session, chat)
            self._announced.add(handle)
        finally:
            c.pjsip_dlg_dec_lock(dialog)

    # ------------------------------------------------------------------ offering

    def offer(self, target: str, identity: Identity) -> ChatSession:
        """Start a chat-only session with `target`: an INVITE with only m=message.

        `on_session` follows once the peer answered with a message line (the
        session's `message` then holds both paths); `on_end` if it refused.
        A 401/407 is answered once with `identity.credentials`.
        """
        if not self.available:
            raise ChatUnavailable(self.unavailable_reason or "chat-only sessions are off")
        section = message_section(
            self._local_path("TCP/MSRP"),
            setup=SetupRole.ACTPASS,
            accept_types=self._accept_types,
            accept_wrapped_types=self._accept_wrapped_types,
        )
        chat = ChatSession("", target, None, ChatSessionState.CALLING, 0, 0, 0, _section=section)
        self._invite(chat, _Offer(identity, section))
        return chat

    def _invite(self, chat: ChatSession, offer: _Offer) -> None:
        c = self._lib
        keep: list[Any] = []
        target = chat.remote_uri
        pool = c.pjsua_pool_create(b"chat-out", 4096, 4096)
        try:
            sdp = self._parse_sdp(pool, _chat_sdp(offer.section))
            dialog = VoidP()
            status = c.pjsip_dlg_create_uac(
                c.pjsip_ua_instance(),
                byref(make_pj_str(f"<{offer.identity.aor}>", keep)),
                byref(make_pj_str(offer.identity.contact(target), keep)),
                byref(make_pj_str(target, keep)),
                byref(make_pj_str(target, keep)),
                byref(dialog),
            )
            if status != 0:
                raise ChatUnavailable(f"pjsip_dlg_create_uac failed ({status})")
            inv = VoidP()
            status = c.pjsip_inv_create_uac(dialog, sdp, 0, byref(inv))
            if status != 0 or not inv.value:
                raise ChatUnavailable(f"pjsip_inv_create_uac failed ({status})")
        except (SdpError, ChatUnavailable):
            c.pj_pool_release(pool)
            raise
        handle = self._adopt(inv)
        chat._inv, chat._pool, chat._sdp = handle, pool, sdp
        chat.state = ChatSessionState.CALLING
        self._sessions[handle] = chat
        self._offers[handle] = offer
        headers = [("Route", route) for route in offer.identity.route]
        if offer.challenge is not None and offer.identity.credentials is not None:
            name, challenge = offer.challenge
            value = challenge.authorization(offer.identity.credentials, "INVITE", target)
            headers.append((name, value))
            offer.authorized = True
        tdata = VoidP()
        status = c.pjsip_inv_invite(handle, byref(tdata))
        if status == 0:
            self._raw.add_headers(int(tdata.value or 0), tuple(headers))
            status = c.pjsip_inv_send_msg(handle, tdata)
        if status != 0:
            log.error("chat INVITE to %s not sent (%d)", target, status)
            c.pjsip_inv_terminate(handle, 500, 1)
            return
        log.info("chat-only INVITE sent to %s", target)

    def on_tsx_state_changed(self, inv: int, tsx: int, event: int) -> None:
        offer = self._offers.get(inv)
        chat = self._sessions.get(inv)
        if offer is not None and chat is not None:
            self._read_answer(chat, offer, event)

    def _read_answer(self, chat: ChatSession, offer: _Offer, event: int) -> None:
        """Read the answer to our offer (2xx SDP) or its challenge (401/407) from `event`."""
        try:
            response = self._raw.event_message(event)
        except MessageError as exc:
            log.warning("unreadable answer to our chat INVITE: %s", exc)
            return
        if response is None or response.status is None or response.cseq[1] != "INVITE":
            return
        chat.call_id = response.call_id
        if response.status in (401, 407) and not offer.authorized:
            header = "www-authenticate" if response.status == 401 else "proxy-authenticate"
            value = response.header(header)
            if value and offer.identity.credentials is not None:
                name = "Authorization" if response.status == 401 else "Proxy-Authorization"
                offer.challenge = (name, DigestChallenge.parse(value))
        elif 200 <= response.status < 300 and chat.message is None:
            try:
                answer = SessionDescription.parse(response.body.decode())
                found = find_message(answer)
            except (SdpError, UnicodeDecodeError) as exc:
                log.warning("chat answer from %s: %s", chat.remote_uri, exc)
                return
            chat.remote_sdp = answer
            if found is not None:
                chat.message = offered_session(offer.section, found[1])

    def _adopt(self, inv: VoidP) -> int:
        """Route a new invite session's callbacks to us and hold it until DISCONNECTED."""
        assert self._table is not None and inv.value
        handle = int(inv.value)
        self._table.ours.add(handle)
        self._lib.pjsip_inv_add_ref(handle)
        return handle

    def _refuse(self, inv: int, rdata: int) -> None:
        """488, as pjsua would have answered, from a session we cannot run."""
        tdata = VoidP()
        if self._lib.pjsip_inv_initial_answer(inv, rdata, 488, None, None, byref(tdata)) == 0:
            self._lib.pjsip_inv_send_msg(inv, tdata)
        else:
            self._lib.pjsip_inv_terminate(inv, 488, 0)

    def _parse_sdp(self, pool: int, text: str) -> int:
        data = text.encode()
        buffer = self._lib.pj_pool_alloc(pool, len(data) + 1)  # the parsed SDP points into it
        ctypes.memmove(buffer, data + b"\0", len(data) + 1)
        sdp = VoidP()
        status = self._lib.pjmedia_sdp_parse(pool, buffer, len(data), byref(sdp))
        if status != 0 or not sdp.value:
            raise SdpError(f"pjmedia cannot parse our own SDP ({status})")
        return int(sdp.value)

    def end(self, chat: ChatSession) -> None:
        """Hang up (BYE, or a final answer if not yet confirmed)."""
        if chat.state is ChatSessionState.ENDED:
            return
        tdata = VoidP()
        status = self._lib.pjsip_inv_end_session(chat._inv, 603, None, byref(tdata))
        if status == 0 and tdata.value:
            status = self._lib.pjsip_inv_send_msg(chat._inv, tdata)
        if status != 0:
            log.warning("ending the chat session with %s failed (%d)", chat.remote_uri, status)

    def close(self) -> None:
        """End every session and give pjsua its callbacks back (before libDestroy)."""
        for chat in list(self._sessions.values()):
            self._lib.pjsip_inv_terminate(chat._inv, 503, 0)
        if self._table is not None:
            self._table.restore()
            self._raw.remove_handler("INVITE", self._on_invite)
            self._table = None

    # ------------------------------------------------------------------ callbacks for our sessions

    def on_state_changed(self, inv: int, event: int) -> None:
        chat = self._sessions.get(inv)
        if chat is None:
            return
        state = inv_state(inv)
        if inv in self._offers:
            # pjsip reports a failed INVITE here before on_tsx_state_changed.
            self._read_answer(chat, self._offers[inv], event)
        if state == INV_STATE_DISCONNECTED:
            chat.state = ChatSessionState.ENDED
            del self._sessions[inv]
            offer = self._offers.pop(inv, None)
            if self._table is not None:
                self._table.ours.discard(inv)
            self._lib.pjsip_inv_dec_ref(inv)
            self._lib.pj_pool_release(chat._pool)
            if offer is not None and offer.challenge is not None and not offer.authorized:
                log.info(
                    "chat INVITE to %s challenged: sending it with credentials", chat.remote_uri
                )
                self._invite(chat, offer)
                return
            log.info("chat session with %s ended", chat.remote_uri)
            if inv in self._announced:
                self._announced.discard(inv)
                self._loop.call_soon(self._on_end, chat)
        elif state == INV_STATE_CONFIRMED:
            chat.state = ChatSessionState.CONFIRMED
            if inv in self._offers and inv not in self._announced:
                if chat.message is None:
                    log.warning("%s answered our chat without a message line", chat.remote_uri)
                    self.end(chat)
                    return
                self._announced.add(inv)
                self._loop.call_soon(self._on_session, chat)

    def on_rx_offer2(self, inv: int, param: int) -> None:
        """A re-INVITE or UPDATE with SDP (RFC 4975 section 8.4). Our path stays;
        the same peer path keeps the session and our role in its connection; a
        new one (a new relay, the peer on another network) needs a new
        connection, whose role the answer states as for a new session
        (RFC 6135), and `on_moved` sets it up."""
        chat = self._sessions.get(inv)
        if chat is None:
            return
        before = chat._section
        try:
            self._reanswer(chat, param)
        except SdpError as exc:
            log.warning("chat re-offer from %s: %s; answering as before", chat.remote_uri, exc)
        chat._answer_changed = chat._section != before
        self._lib.pjsip_inv_set_sdp_answer(inv, chat._sdp)

    def on_media_update(self, inv: int, status: int) -> None:
        """An offer/answer of our session is done; our answer is not sent yet.
        Its o= line must keep the session id and step the version by one
        exactly when the SDP changed (RFC 3264 section 8). pjmedia sets both
        itself, but its comparison sees no attribute other than the direction,
        rtpmap and fmtp: an answer that changes only a=setup or a=path would
        go out with the old version, so it is stepped here."""
        chat = self._sessions.get(inv)
        if chat is None or status != 0 or not self._origin_checked:
            return
        changed, chat._answer_changed = chat._answer_changed, None
        sdp = pjproject.active_local_sdp(inv)
        if not sdp:
            return
        session_id, version = pjproject.sdp_origin(sdp)
        try:
            printed = _origin(SessionDescription.parse(self._sdp_text(sdp)))
        except SdpError:
            printed = None
        if printed != (session_id, version):
            self._origin_checked = False
            log.error("pjmedia's SDP is not laid out as in 2.15.1: o= versions left to pjmedia")
            return
        if changed and chat._version is not None and version <= chat._version:
            version = chat._version + 1
            pjproject.set_sdp_version(sdp, version)
        chat._version = version

    def _reanswer(self, chat: ChatSession, param: int) -> None:
        """Our answer to a re-offer in `chat._sdp`, and `chat.message` after it."""
        live = chat.message
        if live is None or chat._section is None:
            raise SdpError("the session was not set up yet")
        offer = SessionDescription.parse(self._sdp_text(pjproject.rx_offer(param)))
        found = find_message(offer)
        if found is None:
            raise SdpError("no message line in it")
        index, media = found
        if media.protocol != chat._section.protocol:
            # RFC 4975 section 8.5: a connection in the other protocol, from a path of ours in it.
            try:
                path = self._local_path(media.protocol)
                extra = self._answer_lines(offer, offer.media[index]) if self._answer_lines else ()
            except SdpError as exc:
                self._decline(chat, media.protocol, str(exc))
                return
            section, message = answer_section(
                media, path, self._accept_types, self._accept_wrapped_types
            )
            section = with_lines(section, extra)
            moved = True
        else:
            moved = media.path != live.remote_path
            role = answer_role(media.setup, None if moved else live.local_setup)
            section = with_setup(chat._section, role)
            message = MessageSession(
                live.local_path, media.path, media.accept_types, media.accept_wrapped_types, role
            )
        if section != chat._section:  # parsed into the session's pool: only when it changes
            chat._sdp = self._parse_sdp(chat._pool, _chat_sdp(section))
            chat._section = section
        chat.remote_sdp = offer
        chat.message = message
        if moved:
            log.info(
                "chat with %s moved to %s: we %s",
                chat.remote_uri,
                " ".join(media.path),
                "connect" if chat.message.we_connect else "wait for its connection",
            )
            if self._on_moved is not None and chat._inv in self._announced:
                self._loop.call_soon(self._on_moved, chat)

    def _decline(self, chat: ChatSession, protocol: str, reason: str) -> None:
        """A re-offer in a protocol we have no path in: its line is answered at
        port 0 (RFC 3264 section 6), and the session, left without a stream, ends."""
        assert chat._section is not None
        log.warning("chat with %s: %s declined (%s): ending the session", chat.remote_uri,
                    protocol, reason)  # fmt: skip
        section = replace(chat._section, port=0, protocol=protocol)
        chat._sdp = self._parse_sdp(chat._pool, _chat_sdp(section))
        chat._section = section
        self._loop.call_soon(self.end, chat)

    def _sdp_text(self, sdp: int) -> str:
        """A parsed `pjmedia_sdp_session` as text."""
        if not sdp:
            raise SdpError("pjsip passed no offer")
        buffer = ctypes.create_string_buffer(SDP_PRINT_ROOM)
        length = self._lib.pjmedia_sdp_print(sdp, buffer, len(buffer))
        if length <= 0:
            raise SdpError(f"pjmedia cannot print the offer ({length})")
        return buffer.raw[:length].decode(errors="replace")


def _chat_sdp(section: MediaSection) -> str:
    """A whole SDP with one m=message section, addressed like its MSRP path."""
    path = (section.attribute("path") or "").split()
    host = path[-1].split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    # The session's first SDP only: pjmedia gives later ones its o= id and
    # version (stepped by `on_media_update` where pjmedia misses a change).
    version = secrets.randbelow(1 << 30)
    session = ("v=0", f"o=- {version} {version} IN IP4 {host}", "s=-", f"c=IN IP4 {host}", "t=0 0")
    return SessionDescription(session, (section,)).to_text()


def _origin(sdp: SessionDescription) -> tuple[int, int] | None:
    """(session id, version) of an SDP's o= line; None if it has none."""
    for line in sdp.session:
        if line.startswith("o="):
            fields = line[2:].split()
            if len(fields) == 6 and fields[1].isdigit() and fields[2].isdigit():
                return int(fields[1]), int(fields[2])
    return None


def _only_message_lines(body: bytes) -> bool:
    """Whether every m-line of a (possibly malformed) SDP is an m=message line."""
    kinds = [line[2:].split(b" ", 1)[0] for line in body.splitlines() if line.startswith(b"m=")]
    return bool(kinds) and all(kind == b"message" for kind in kinds)
