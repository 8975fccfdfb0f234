"""The SIP services plugins use beside pjsua's account and calls.

They are built on the request hook (`phone.sip.rawsip`) once the stack runs:
subscriptions (the `Subscriber`, which also holds the account's `Identity`
for every request we build ourselves), publications and chat-only sessions.
`close()` ends them all (Expires: 0, BYE) while the account is still
registered; `SipStack.stop` runs it before unregistering. `phone.api.PhoneApi`
is the plugins' way in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from phone.sip.chat_session import AnswerLines, ChatSession, ChatSessions
from phone.sip.identity import Identity
from phone.sip.packages import EventPackage
from phone.sip.publication import Publication
from phone.sip.rawsip import RawSip
from phone.sip.subscription import Subscriber

log = logging.getLogger(__name__)


class SipServices:
    """Subscriptions, publications and chat-only sessions of the one account."""

    def __init__(self, raw: RawSip, subscriber: Subscriber) -> None:
        self.raw = raw
        self.subscriber = subscriber
        self._publications: list[Publication] = []
        self._chats: ChatSessions | None = None

    @property
    def identity(self) -> Identity:
        return self.subscriber.identity

    def publish(
        self, event: EventPackage | str, content_type: str, *, expires: int = 600
    ) -> Publication:
        """A publication of our own `event` state (RFC 3903); `publish(body)` on it
        sends. It refreshes itself and is removed (Expires: 0) by `close()`."""
        publication = Publication(
            self.raw,
            self.identity,
            asyncio.get_running_loop(),
            str(EventPackage(event)),
            content_type,
            expires,
        )
        self._publications.append(publication)
        return publication

    def chat_sessions(
        self,
        local_path: Callable[[str], tuple[str, ...]],
        on_session: Callable[[ChatSession], None],
        on_end: Callable[[ChatSession], None],
        answer_lines: AnswerLines | None = None,
        on_moved: Callable[[ChatSession], None] | None = None,
    ) -> ChatSessions:
        """Start answering chat-only INVITEs (m=message only, as Blink sends).

        Called by the plugin that carries MSRP; until then such offers get 488.
        If pjsip's layout fails the checks, `available` is False, the reason is
        logged, and offers keep getting 488.
        """
        if self._chats is not None:
            raise RuntimeError("chat sessions are already taken by another plugin")
        contact = self.identity.contact(self.identity.aor)
        self._chats = ChatSessions(
            self.raw,
            asyncio.get_running_loop(),
            contact,
            local_path,
            on_session,
            on_end,
            answer_lines=answer_lines,
            on_moved=on_moved,
        )
        if not self._chats.available:
            log.error("chat-only sessions are off: %s", self._chats.unavailable_reason)
        return self._chats

    async def close(self) -> None:
        """Withdraw publications, end subscriptions and chat sessions."""
        if self._publications:
            await asyncio.gather(*(p.close() for p in self._publications))
        await self.subscriber.close()  # Expires: 0 while still registered
        if self._chats is not None:
            self._chats.close()
