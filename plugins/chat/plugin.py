"""The chat plugin object: MSRP sessions and pager MESSAGEs in, the screen,
LEDs and replies out.

Three ways text arrives, all shown the same way: a chat-only session (an
INVITE with only m=message, as Blink starts one), the message stream of
an audio call, and a pager-mode MESSAGE (RFC 3428). Text comes as
message/cpim (RFC 3862) wrapping text/plain, or as bare text/plain; a
wrapped type outside our a=accept-wrapped-types is dropped and logged.
is-composing (RFC 3994) shows "typing…"; an IMDN delivery notice (RFC 5438)
goes back where the sender asks for one.

Room chat: in a call with a conference focus (`isfocus`, or a room contact)
the message stream is the room's, and the focus relays every participant's
text with the sender in the CPIM `From` (as SylkServer does). Such text
shows under the room's name as "<sender>: <text>", is kept with the sender
as `from`, and a reply goes to the whole room.

The read rule: a message stays unread (the contact's LED winks in the
colour of their presence, amber when it shows none; `C:<n>` in the footer)
until the person acts on it while it is on the screen (any press while it
is shown), or presses the sender's button while no call goes on, which
shows that person's unread text instead of calling them. A message that
pops up while nobody looks stays unread.

Replies: while a message is shown, `page` picks the next canned reply,
`answer` sends it and `end` dismisses. A reply goes back on the session the
text came on; if that has ended, by a new chat-only INVITE; if that fails,
by MESSAGE. During a call `end` stays the call's, and in a call that
carries chat (an m=message line next to the audio) `page` opens the
replies to the other side even before they wrote.

Moves: a re-INVITE or UPDATE that names another path for the peer (Blink on
another network, a new relay grant; RFC 4975 section 8.4) leaves the old
MSRP session and sets the conversation up on the new path; replies waiting
or left unanswered on the old one are sent there. A new path that cannot
be set up ends the chat, with a note on the screen.

A re-offer in the other protocol (TCP/MSRP <-> TCP/TLS/MSRP, RFC 4975
section 8.5) is such a move, to a path of ours in that protocol; one the
transport lacks (TLS through a plain relay) is declined and ends the chat.
A chat that ends while its SIP session goes on is ended there too, so the
peer knows: a chat-only session with BYE, a call's chat with a re-INVITE
whose m=message line has port 0 (RFC 3264 section 8.2), the audio going on;
a peer's re-offer with that line at port 0 ends the call's chat here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from PIL import Image, UnidentifiedImageError

from phone.api import (
    CallInfo,
    CallState,
    ChatSession,
    ChatSessions,
    ChatSessionState,
    ChatUnavailable,
    Credentials,
    Led,
    LedMark,
    MediaSection,
    MessageSession,
    PhoneApi,
    SdpError,
    SendError,
    SessionDescription,
    SipMessage,
    address_key,
    contact_index,
)
from phone.hookspecs import hookimpl
from phone.msrp.chunks import FileSink, IncomingMessage, MemorySink
from phone.msrp.error import MsrpClosed, MsrpError
from phone.msrp.sdp import FileTransfer
from phone.msrp.session import MsrpSession
from phone.msrp.uri import MsrpUri
from phone.payloads import cpim, imdn, iscomposing
from phone.payloads.error import PayloadError
from phone.uri import parse_name_addr, parse_sip_uri
from plugins.chat import files
from plugins.chat.history import NAME, History, Unread
from plugins.chat.transport import ChatTransport
from plugins.chat.view import ChatView

log = logging.getLogger(__name__)

NOTE_SECONDS = 3.0
COMPOSING_TIMEOUT = 120.0  # RFC 3994 section 4: an active state without refresh
STREAM_WAIT = 2.0  # for a call's message stream to be agreed once confirmed
OFFER_TIMEOUT = 10.0  # a chat offer not answered by then gives way to MESSAGE
COMPOSING_REFRESH = 60  # what we send while a reply is being picked
TEXT = "text/plain"
WRAPPED = (TEXT, iscomposing.CONTENT_TYPE, imdn.CONTENT_TYPE)


@dataclass(frozen=True)
class ChatSettings:
    relay: str | None
    relay_username: str | None
    relay_password: str | None
    port: int
    replies: tuple[str, ...]
    history: int
    max_file_bytes: int
    unread_led: Led
    show_seconds: float  # how long a message stays on the screen


@dataclass
class Conversation:
    """A live MSRP session with one peer (chat-only or a call's)."""

    peer_uri: str
    msrp: MsrpSession
    chat: ChatSession | None
    call_id: int | None  # a call's message stream
    outbox: list[str] = field(default_factory=list)  # replies waiting for the session to start
    started: bool = False
    room: bool = False  # a conference's stream: CPIM From names each sender
    moved: bool = False  # the peer re-offered another path: `msrp` is the session set up there


class ChatPlugin:
    def __init__(self, settings: ChatSettings, relay: MsrpUri | None) -> None:
        self.settings = settings
        self._relay = relay
        self.phone: PhoneApi | None = None
        self.transport: ChatTransport | None = None
        self.history: History | None = None
        self.view: ChatView | None = None
        self._view_until = 0.0
        self._conversations: dict[str, Conversation] = {}  # by the peer's address key
        self._typing: dict[str, float] = {}  # address key → until
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lit: set[str] = set()  # URIs whose LED shows unread
        self._chats: ChatSessions | None = None
        self._pending: dict[str, list[str]] = {}  # replies waiting for our chat offer

    # -- start and stop ---------------------------------------------------
    @hookimpl
    def phone_started(self, phone: PhoneApi) -> Awaitable[None]:
        self.phone = phone
        self.history = History(phone, self.settings.history)
        self.transport = ChatTransport(
            phone.local_address, self.settings.port, self._relay, phone.data_dir(NAME)
        )
        phone.receive_messages(self._pager)
        phone.chat_in_calls(
            self.transport.local_path,
            self._call_chat_moved,
            self._call_answer_lines,
            self._call_chat_ended,
        )
        self._chats = phone.chat_sessions(
            self.transport.local_path,
            self._session_started,
            self._session_ended,
            self._answer_lines,
            self._session_moved,
        )
        self._show_unread()
        return self._start_transport(phone)

    async def _start_transport(self, phone: PhoneApi) -> None:
        assert self.transport is not None
        s = self.settings
        credentials = phone.credentials()
        if s.relay_username is not None and s.relay_password is not None:
            credentials = Credentials(s.relay_username, s.relay_password)
        try:
            await self.transport.start(credentials)
        except MsrpError as exc:
            log.error("chat: MSRP relay %s refused: %s; chat offers get 488", s.relay, exc)
            phone.show_message(["Chat relay failed", str(exc.status)], NOTE_SECONDS)

    @hookimpl
    def phone_stopping(self) -> Awaitable[None] | None:
        for conversation in list(self._conversations.values()):
            conversation.msrp.close("phone stopping")
        return self.transport.close() if self.transport is not None else None

    # -- incoming sessions ----------------------------------------------------
    def _answer_lines(self, offer: SessionDescription, section: MediaSection) -> tuple[str, ...]:
        assert self.transport is not None
        try:
            lines = files.answer_lines(section, self.settings.max_file_bytes)
            return lines + self.transport.answer_lines(section)
        except files.FileTooLarge as exc:
            size = exc.transfer.selector.size
            self._note(["File refused:", f"{files.size_text(size or 0)} too big"])
            raise

    def _call_answer_lines(
        self, _offer: SessionDescription, section: MediaSection
    ) -> tuple[str, ...]:
        """Our fingerprint in the answer to an msrps line in a call."""
        assert self.transport is not None
        return self.transport.answer_lines(section)

    def _session_started(self, chat: ChatSession) -> None:
        assert self.transport is not None and chat.message is not None
        try:
            transfer = files.offered_file(chat.remote_sdp)
        except SdpError as exc:
            log.warning("chat: file offer from %s unusable: %s", chat.remote_uri, exc)
            self._end_chat(chat)
            return
        if transfer is not None and chat.remote_sdp is not None:
            self._receive_file(chat, transfer)
            return
        self._open(chat.remote_uri, chat.message, chat, None)

    def _open(
        self,
        peer_uri: str,
        message: MessageSession,
        chat: ChatSession | None,
        call_id: int | None,
        room: bool = False,
        remote_sdp: SessionDescription | None = None,
    ) -> None:
        """The MSRP session of a chat-only session (`chat`) or of a call (`call_id`,
        a conference room's when `room`; `remote_sdp` the peer's)."""
        key = address_key(peer_uri)
        old = self._conversations.pop(key, None)
        if old is not None:
            old.msrp.close("a new session replaced it")
        if chat is not None:
            remote_sdp = chat.remote_sdp
        try:
            msrp = self._msrp(peer_uri, message, remote_sdp)
        except MsrpError as exc:
            log.warning("chat with %s refused: %s", peer_uri, exc)
            if chat is not None:
                self._end_chat(chat)
            return
        conversation = Conversation(
            peer_uri, msrp, chat, call_id, self._pending.pop(key, []), room=room
        )
        self._attach(conversation, msrp, message.we_connect)

    def _msrp(
        self, peer_uri: str, message: MessageSession, remote_sdp: SessionDescription | None
    ) -> MsrpSession:
        """The MSRP session of a conversation on `message`'s paths (MsrpError if unusable)."""
        assert self.transport is not None
        return self.transport.session(
            message,
            remote_sdp,
            accept_types=("message/cpim", TEXT, iscomposing.CONTENT_TYPE),
            on_message=lambda m: self._msrp_message(peer_uri, m),
        )

    def _attach(self, conversation: Conversation, msrp: MsrpSession, active: bool) -> None:
        """Carry `conversation` on `msrp` from now on, once it is set up."""
        key = address_key(conversation.peer_uri)
        conversation.msrp, conversation.started = msrp, False
        msrp.on_closed = lambda reason: self._msrp_closed(key, conversation, reason)
        self._conversations[key] = conversation
        self._run(self._start(conversation, active))

    def _session_moved(self, chat: ChatSession) -> None:
        """A chat-only session's peer re-offered another path."""
        conversation = next((c for c in self._conversations.values() if c.chat is chat), None)
        if conversation is not None and chat.message is not None:
            self._move(conversation, chat.message, chat.remote_sdp)

    def _call_chat_moved(self, call_id: int, message: MessageSession) -> None:
        """A call's peer re-offered another path or protocol for its chat, or
        offered it again after it ended."""
        assert self.phone is not None
        remote_sdp = self.phone.call_chat_sdp(call_id)
        conversation = next((c for c in self._conversations.values() if c.call_id == call_id), None)
        if conversation is not None:
            self._move(conversation, message, remote_sdp)
            return
        call = next((c for c in self.phone.calls() if c.id == call_id), None)
        if call is not None and call.state is CallState.CONFIRMED:
            self._open_call_chat(call, message, remote_sdp)

    def _call_chat_ended(self, call_id: int) -> None:
        """A call's peer ended its chat (its offer had the line at port 0)."""
        for conversation in list(self._conversations.values()):
            if conversation.call_id == call_id:
                log.info("chat with %s ended by the peer; the call goes on",
                         conversation.peer_uri)  # fmt: skip
                conversation.msrp.close("the peer ended the chat")

    def _move(
        self,
        conversation: Conversation,
        message: MessageSession,
        remote_sdp: SessionDescription | None,
    ) -> None:
        """The peer re-offered another MSRP path (RFC 4975 section 8.4: the old one
        may be gone): leave the old connection, set the session up again on the
        new path, and go on there with what was waiting or on its way."""
        old = conversation.msrp
        old.on_closed = None  # the conversation goes on: not ended with it
        old.close("the peer moved to another path")
        conversation.moved = True
        try:
            msrp = self._msrp(conversation.peer_uri, message, remote_sdp)
        except MsrpError as exc:
            self._lost(conversation, str(exc))
            self._msrp_closed(address_key(conversation.peer_uri), conversation, str(exc))
            return
        self._attach(conversation, msrp, message.we_connect)

    def _lost(self, conversation: Conversation, reason: str) -> None:
        """A chat that moved and cannot be set up on its new path: it ends."""
        who = self._name(conversation.peer_uri, None)
        log.warning(
            "chat with %s: no session on its new path (%s): ending it",
            conversation.peer_uri,
            reason,
        )
        self._note([f"Chat with {who}", "ended: link lost"])
        self._end_call_chat(conversation)

    def _end_call_chat(self, conversation: Conversation) -> None:
        """A call's chat we give up on: the peer is told by a re-INVITE with its
        line at port 0 (a chat-only session ends with BYE when its MSRP closes).
        A connection the peer drops is no such end: it may be moving."""
        if conversation.call_id is not None:
            assert self.phone is not None
            self.phone.end_call_chat(conversation.call_id)  # nothing if the call is over

    async def _start(self, conversation: Conversation, active: bool) -> None:
        msrp = conversation.msrp
        try:
            await msrp.start(active=active)
        except MsrpError as exc:
            if conversation.msrp is not msrp:
                return  # moved meanwhile: the session on the new path takes over
            if isinstance(exc, MsrpClosed):  # closed meanwhile (the call ended, say)
                log.info("chat with %s over before it was set up: %s", conversation.peer_uri, exc)
            elif conversation.moved:
                self._lost(conversation, str(exc))
            else:
                log.warning("chat with %s not set up: %s", conversation.peer_uri, exc)
                self._end_call_chat(conversation)
            return
        if conversation.msrp is not msrp:
            return  # moved meanwhile: the session on the new path takes over
        conversation.started = True
        while conversation.outbox and conversation.msrp is msrp:
            await self._send_on(conversation, conversation.outbox.pop(0))

    def _msrp_closed(self, key: str, conversation: Conversation, reason: str) -> None:
        if self._conversations.get(key) is conversation:
            del self._conversations[key]
        if conversation.chat is not None:
            self._end_chat(conversation.chat)
        if conversation.outbox:
            self._run(self._fallback(conversation.peer_uri, conversation.outbox))

    def _session_ended(self, chat: ChatSession) -> None:
        key = address_key(chat.remote_uri)
        conversation = self._conversations.get(key)
        if conversation is not None and conversation.chat is chat:
            conversation.msrp.close("the SIP session ended")

    def _end_chat(self, chat: ChatSession) -> None:
        if self._chats is not None:
            self._chats.end(chat)

    # -- receiving -------------------------------------------------------------
    def _msrp_message(self, peer_uri: str, message: IncomingMessage) -> None:
        sink = message.sink
        assert isinstance(sink, MemorySink)
        conversation = self._conversations.get(address_key(peer_uri))
        self._content(peer_uri, None, message.content_type or TEXT, sink.data, conversation)

    def _pager(self, message: SipMessage) -> int:
        """A MESSAGE outside a dialog: 200 when shown, 415 for a body we do not read."""
        content_type = (message.content_type or TEXT).split(";", 1)[0].strip().lower()
        if content_type not in ("message/cpim", *WRAPPED):
            return 415
        try:
            name, _ = parse_name_addr(message.from_.text)
        except ValueError:
            name = None
        return self._content(message.from_.uri, name, content_type, message.body, None)

    def _content(
        self,
        peer_uri: str,
        display_name: str | None,
        content_type: str,
        body: bytes,
        conversation: Conversation | None,
    ) -> int:
        content_type = content_type.split(";", 1)[0].strip().lower()
        wrapper: cpim.CpimMessage | None = None
        sender: cpim.Identity | None = None  # who wrote, in a room
        if content_type == cpim.CONTENT_TYPE:
            try:
                wrapper = cpim.parse(body)
            except PayloadError as exc:
                log.warning("chat: bad CPIM from %s: %s", peer_uri, exc)
                return 400
            content_type = wrapper.content_type.split(";", 1)[0].strip().lower()
            body = wrapper.body
            if conversation is not None and conversation.room:
                sender = wrapper.sender
            elif wrapper.sender is not None:
                display_name = display_name or wrapper.sender.display_name
            if content_type not in WRAPPED:
                log.warning("chat: %s wrapped %s, which we did not accept", peer_uri, content_type)
                return 415
        if content_type == iscomposing.CONTENT_TYPE:
            self._composing(peer_uri, body)
            return 200
        if content_type == imdn.CONTENT_TYPE:
            return 200  # a receipt for one of ours: nothing to show
        if content_type != TEXT:
            return 415
        try:
            text = body.decode()
        except UnicodeDecodeError:
            log.warning("chat: text from %s is not UTF-8", peer_uri)
            return 400
        self._incoming(peer_uri, display_name, text, sender)
        if wrapper is not None and conversation is not None:
            self._receipt(conversation, wrapper)
        return 200

    def _incoming(
        self,
        peer_uri: str,
        display_name: str | None,
        text: str,
        sender: cpim.Identity | None = None,
    ) -> None:
        """Text from `peer_uri`; in a room, `sender` (CPIM From) wrote it."""
        assert self.phone is not None and self.history is not None
        from_uri = peer_uri if sender is None else sender.uri
        self.history.add(peer_uri, from_uri, self.phone.account.aor, text, incoming=True)
        key = address_key(peer_uri)
        self._typing.pop(key, None)
        log.info("chat: message from %s (%d characters)", from_uri, len(text))
        shown = text
        if sender is not None:
            shown = f"{self._sender_name(sender.uri, sender.display_name)}: {text}"
            display_name = None  # the sender's, not the room's
        if self.view is not None and address_key(self.view.peer_uri) == key and self._showing():
            self.view.add(shown)
            self.view.typing = False
        elif not any(c.state is not CallState.CONFIRMED for c in self.phone.calls()):
            self.view = ChatView(peer_uri, self._name(peer_uri, display_name), [shown],
                                 self.settings.replies)  # fmt: skip
        self._show_unread()
        if self.view is not None and address_key(self.view.peer_uri) == key:
            self._show_view()

    def _composing(self, peer_uri: str, body: bytes) -> None:
        try:
            indication = iscomposing.parse(body)
        except PayloadError as exc:
            log.info("chat: bad is-composing from %s: %s", peer_uri, exc)
            return
        key = address_key(peer_uri)
        if indication.state is iscomposing.ComposingState.ACTIVE:
            self._typing[key] = time.monotonic() + (indication.refresh or COMPOSING_TIMEOUT)
        else:
            self._typing.pop(key, None)
        if self.view is not None and address_key(self.view.peer_uri) == key and self._showing():
            self._show_view()

    def _receipt(self, conversation: Conversation, message: cpim.CpimMessage) -> None:
        """An IMDN delivery notice, where the sender asked for one (RFC 5438 section 7)."""
        assert self.phone is not None
        request = imdn.requested(message)
        if request is None or imdn.Disposition.POSITIVE_DELIVERY not in request.dispositions:
            return
        try:
            notice = imdn.notification_for(
                message,
                request,
                imdn.NotificationKind.DELIVERY,
                "delivered",
                sender=cpim.Identity(self.phone.account.aor),
                now=datetime.now(UTC),
            )
        except ValueError as exc:
            log.info("chat: no receipt: %s", exc)
            return
        self._run(self._send_cpim(conversation, notice))

    # -- files -------------------------------------------------------------------
    def _receive_file(self, chat: ChatSession, transfer: FileTransfer) -> None:
        assert self.phone is not None and self.transport is not None and chat.message is not None
        path = files.file_path(self.phone.data_dir(NAME), transfer)
        sink = FileSink(path, self.settings.max_file_bytes)
        try:
            msrp = self.transport.session(
                chat.message,
                chat.remote_sdp,
                accept_types=("*",),
                max_message_bytes=self.settings.max_file_bytes,
                sink_factory=lambda _frame: sink,
            )
        except MsrpError as exc:
            log.warning("chat: file from %s refused: %s", chat.remote_uri, exc)
            self._end_chat(chat)
            return
        msrp.on_message = lambda _m: self._file_received(chat, transfer, sink, msrp)
        msrp.on_closed = lambda _reason: self._end_chat(chat)
        log.info("chat: receiving %r from %s", transfer.selector.name, chat.remote_uri)
        self._run(self._start_file(msrp, chat.message.we_connect))

    async def _start_file(self, msrp: MsrpSession, active: bool) -> None:
        try:
            await msrp.start(active=active)
        except MsrpError as exc:
            log.warning("chat: file transfer not set up: %s", exc)

    def _file_received(
        self, chat: ChatSession, transfer: FileTransfer, sink: FileSink, msrp: MsrpSession
    ) -> None:
        assert self.phone is not None and self.history is not None
        size = sink.path.stat().st_size
        ok = files.sha1_ok(transfer, sink)
        name = transfer.selector.name or sink.path.name
        self.history.add_file(chat.remote_uri, name, size, str(sink.path), ok)
        who = self._name(chat.remote_uri, None)
        log.info("chat: file %r (%d bytes) from %s, sha-1 %s", name, size, chat.remote_uri,
                 {True: "ok", False: "WRONG", None: "not offered"}[ok])  # fmt: skip
        lines = [f"File from {who}:", name, files.size_text(size)]
        if ok is False:
            lines[2] += " BAD HASH"
        self._note(lines, self.settings.show_seconds)
        if files.is_image(transfer) and ok is not False:
            try:
                with Image.open(sink.path) as image:
                    image.load()
                    self.phone.show_image(image)
            except (UnidentifiedImageError, OSError) as exc:
                log.warning("chat: image %r not shown: %s", name, exc)
        msrp.close("file received")

    # -- replies -------------------------------------------------------------------
    def _reply(self, text: str) -> None:
        assert self.phone is not None and self.history is not None and self.view is not None
        peer_uri = self.view.peer_uri
        self.history.add(peer_uri, self.phone.account.aor, peer_uri, text, incoming=False)
        conversation = self._conversations.get(address_key(peer_uri))
        key = address_key(peer_uri)
        if conversation is None and key in self._pending:
            self._pending[key].append(text)  # our offer is on its way
        elif conversation is None:
            try:
                offer = self.phone.offer_chat(peer_uri)
            except (ChatUnavailable, SdpError) as exc:
                log.info("chat: no session to %s (%s): sending MESSAGE", peer_uri, exc)
                self._run(self._fallback(peer_uri, [text]))
            else:
                self._pending[key] = [text]
                self._run(self._offer_outcome(key, peer_uri, offer))
        elif conversation.started:
            self._run(self._send_on(conversation, text))
        else:
            conversation.outbox.append(text)
        self._note(["Sent:", text])

    async def _offer_outcome(self, key: str, peer_uri: str, offer: ChatSession) -> None:
        """MESSAGE for what waited on our chat offer, if the peer refused it."""
        deadline = time.monotonic() + OFFER_TIMEOUT
        while key in self._pending and offer.state is not ChatSessionState.ENDED:
            if time.monotonic() > deadline:
                self._end_chat(offer)
                break
            await asyncio.sleep(0.1)
        texts = self._pending.pop(key, None)
        if texts:
            log.info("chat: %s did not take our chat offer: sending MESSAGE", peer_uri)
            await self._fallback(peer_uri, texts)

    async def _send_on(self, conversation: Conversation, text: str) -> None:
        """Send `text`; if the session moves meanwhile, again on the new one
        (once set up); if it cannot go, the screen says so."""
        assert self.phone is not None
        message = cpim.CpimMessage(
            content_type=TEXT,
            body=text.encode(),
            sender=cpim.Identity(self.phone.account.aor),
            recipients=(cpim.Identity(conversation.peer_uri),),
            timestamp=datetime.now(UTC),
        )
        msrp = conversation.msrp
        try:
            await msrp.send_message(cpim.CONTENT_TYPE, cpim.build(message))
            return
        except MsrpError as exc:
            moved = conversation.msrp is not msrp and not conversation.msrp.closed
            if not moved:
                log.warning("chat: not sent to %s: %s", conversation.peer_uri, exc)
                self._note(["Not delivered:", text])
                return
        log.info(
            "chat with %s moved while a text was on its way: sent again", conversation.peer_uri
        )
        if conversation.started:
            await self._send_on(conversation, text)
        else:
            conversation.outbox.append(text)

    async def _send_cpim(self, conversation: Conversation, message: cpim.CpimMessage) -> None:
        try:
            await conversation.msrp.send_message(cpim.CONTENT_TYPE, cpim.build(message))
        except MsrpError as exc:
            log.warning("chat: not sent to %s: %s", conversation.peer_uri, exc)

    async def _fallback(self, peer_uri: str, texts: list[str]) -> None:
        """Pager-mode MESSAGE, where no session could carry the text."""
        assert self.phone is not None
        for text in list(texts):
            try:
                response = await self.phone.send_message(peer_uri, text.encode(), TEXT)
            except SendError as exc:
                log.warning("chat: MESSAGE to %s not built: %s", peer_uri, exc)
                return
            status = response.status if response is not None else None
            if status is None or not 200 <= status < 300:
                log.warning("chat: MESSAGE to %s answered %s", peer_uri, status)
                self._note(["Not delivered:", text])

    # -- the screen and LEDs -----------------------------------------------------
    def _name(self, uri: str, display_name: str | None) -> str:
        assert self.phone is not None
        contact = self.phone.find_contact(uri)
        if contact is not None:
            return contact.name
        return display_name or uri.removeprefix("sip:")

    def _sender_name(self, uri: str, display_name: str | None) -> str:
        """Who wrote in a room, short: a contact's name, their display name, or
        their user part."""
        assert self.phone is not None
        contact = self.phone.find_contact(uri)
        if contact is not None:
            return contact.name
        if display_name:
            return display_name
        try:
            parsed = parse_sip_uri(uri)
        except ValueError:
            return uri
        return parsed.user or parsed.host

    def _unread_text(self, peer_uri: str, unread: Unread) -> str:
        """An unread text as shown: room chat (another sender) with who wrote it."""
        if address_key(unread.peer_uri) == address_key(peer_uri):
            return unread.text
        return f"{self._sender_name(unread.peer_uri, None)}: {unread.text}"

    def _showing(self) -> bool:
        return self.view is not None and time.monotonic() < self._view_until

    def _show_view(self) -> None:
        assert self.phone is not None and self.view is not None
        key = address_key(self.view.peer_uri)
        until = self._typing.get(key)
        self.view.typing = until is not None and time.monotonic() < until
        self._view_until = time.monotonic() + self.settings.show_seconds
        self.phone.show_message(self.view.lines(), self.settings.show_seconds)
        self.phone.redraw()

    def _dismiss(self) -> None:
        assert self.phone is not None
        self.view = None
        self._view_until = 0.0
        self.phone.show_message([], 0.0)
        self.phone.redraw()

    def _note(self, lines: list[str], seconds: float = NOTE_SECONDS) -> None:
        assert self.phone is not None
        self.view = None
        self._view_until = 0.0
        self.phone.show_message(lines, seconds)
        self.phone.redraw()

    def _show_unread(self) -> None:
        """The unread LEDs and the `C:<n>` footer count, from the history."""
        assert self.phone is not None and self.history is not None
        unread = self.history.unread_peers()
        lit = set()
        for uri in unread.values():
            contact = self.phone.find_contact(uri)
            if contact is not None:
                mark = LedMark(self.settings.unread_led)  # over their presence
                self.phone.set_led(contact.uri, mark, NAME, urgent=True)
                lit.add(contact.uri)
        for uri in self._lit - lit:
            self.phone.clear_led(uri, NAME)
        self._lit = lit
        count = self.history.unread_count()
        self.phone.set_indicator(NAME, f"C:{count}" if count else "")
        self.phone.redraw()

    def _read(self) -> None:
        assert self.history is not None and self.view is not None
        self.history.mark_read(self.view.peer_uri)
        self._show_unread()

    # -- hooks ---------------------------------------------------------------------
    @hookimpl
    def button_pressed(self, phone: PhoneApi, button: str, long_press: bool) -> bool | None:
        if self.history is None:
            return None
        in_call = bool(phone.calls())
        if self._showing() and self.view is not None:
            contact = phone.contact_on(button) if contact_index(button) is not None else None
            sender = address_key(self.view.peer_uri)
            if contact is not None and address_key(contact.uri) == sender and not in_call:
                button = "sender"  # read, shown on: the sender's button does not call now
            return self._view_button(button, in_call)
        if button == "page" and in_call:
            conversation = self._call_conversation(phone)
            if conversation is None:
                return None
            name = self._name(conversation.peer_uri, None)
            self.view = ChatView(conversation.peer_uri, name, [], self.settings.replies)
            return self._view_button(button, in_call)
        if contact_index(button) is not None and not long_press and not in_call:
            contact = phone.contact_on(button)
            if contact is None:
                return None
            unread = self.history.unread(contact.uri)
            if not unread:
                return None
            texts = [self._unread_text(contact.uri, u) for u in unread]
            self.view = ChatView(contact.uri, contact.name, texts, self.settings.replies)
            self._read()
            self._show_view()
            return True
        return None

    def _view_button(self, button: str, in_call: bool) -> bool | None:
        assert self.view is not None
        self._read()
        if button == "page":
            if self.view.next_reply() is not None:
                self._composing_out(iscomposing.ComposingState.ACTIVE)
        elif button == "answer" and self.view.chosen is not None:
            self._reply(self.view.chosen)
            return True
        elif button == "sender":
            pass
        elif button in ("volume_up", "volume_down"):
            self.view.scroll(1 if button == "volume_up" else -1)
        elif button == "end" and not in_call:
            if self.view.reply is not None:
                self._composing_out(iscomposing.ComposingState.IDLE)
            self._dismiss()
            return True
        else:
            return None  # contact buttons, and end during a call: the core's
        self._show_view()
        return True

    async def _call_stream(self, phone: PhoneApi, call: CallInfo) -> None:
        """Open the call's message stream once agreed: as offerer pjsua reports the
        call confirmed before the 2xx's transaction, where the answer is read."""
        deadline = time.monotonic() + STREAM_WAIT
        while (message := phone.call_chat(call.id)) is None:
            if time.monotonic() > deadline or not any(c.id == call.id for c in phone.calls()):
                return  # no message line in this call
            await asyncio.sleep(0.02)
        if not any(c.call_id == call.id for c in self._conversations.values()):
            self._open_call_chat(call, message, phone.call_chat_sdp(call.id))

    def _open_call_chat(
        self, call: CallInfo, message: MessageSession, remote_sdp: SessionDescription | None
    ) -> None:
        assert self.phone is not None
        contact = self.phone.find_contact(call.remote_uri)
        room = call.isfocus or (contact is not None and contact.conference)
        self._open(call.remote_uri, message, None, call.id, room, remote_sdp)

    def _call_conversation(self, phone: PhoneApi) -> Conversation | None:
        """The message stream of the call going on, if it has one."""
        confirmed = {c.id for c in phone.calls() if c.state is CallState.CONFIRMED}
        for conversation in self._conversations.values():
            if conversation.call_id in confirmed:
                return conversation
        return None

    def _composing_out(self, state: iscomposing.ComposingState) -> None:
        """Tell the peer we are (no longer) writing, on a live session only."""
        assert self.phone is not None and self.view is not None
        conversation = self._conversations.get(address_key(self.view.peer_uri))
        if conversation is None or not conversation.started:
            return
        refresh = COMPOSING_REFRESH if state is iscomposing.ComposingState.ACTIVE else None
        body = iscomposing.build(iscomposing.IsComposing(state, refresh=refresh))
        message = cpim.CpimMessage(
            content_type=iscomposing.CONTENT_TYPE,
            body=body,
            sender=cpim.Identity(self.phone.account.aor),
            recipients=(cpim.Identity(conversation.peer_uri),),
        )
        self._run(self._send_cpim(conversation, message))

    @hookimpl
    def call_changed(self, phone: PhoneApi, call: CallInfo) -> None:
        if call.state is CallState.RINGING and self._showing():
            self._dismiss()  # the ringing call's screen comes first
        if call.state is CallState.CONFIRMED:
            self._run(self._call_stream(phone, call))
        elif call.state is CallState.DISCONNECTED:
            for conversation in list(self._conversations.values()):
                if conversation.call_id == call.id:
                    conversation.msrp.close("the call ended")

    @hookimpl
    def contacts_changed(self) -> None:
        if self.history is not None:
            self._show_unread()

    @hookimpl
    def control_state(self) -> Mapping[str, object] | None:
        return None if self.history is None else self.history.describe()

    def _run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
