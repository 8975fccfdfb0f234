"""`PhoneApi`: everything a plugin may do with the phone, in one small typed object.

Every hook gets it as `phone` (see `phone.hookspecs`); plugins import nothing
else of the core but this module, `phone.hookspecs`, `phone.payloads`,
`phone.settings`, `phone.uri`, `phone.msrp` (the MSRP protocol library) and
`phone.xcap` (the XCAP client); a test enforces it. The types a plugin meets (calls, contacts,
LEDs, subscriptions, publications, chat sessions, SIP responses) are
re-exported here, so a plugin never imports `phone.sip` or pjsua2.

It is a facade class over the `Phone`, not a Protocol: there is one
implementation, and a plugin holding this object can reach only these members
(the phone, its SIP stack, config and store stay behind `_phone`), while mypy
checks plugins against the real signatures instead of a second copy that
could drift. To test a plugin, run it in a whole phone on the virtual board
(`phone.remote.RemotePhone`; see plugins/README.md), as luma's `dummy`
device stands in for a panel.

All members are called on the event-loop thread (where hooks run). The guide,
plugins/README.md, describes each member; a test checks that it does.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from phone.board import LED_OFF, Led, LedColor, LedPattern, contact_index
from phone.buttons import CALL_LAYER, Contact, LedMark, address_key
from phone.calls import CallInfo, CallState, Direction
from phone.payloads.rpid import Activity
from phone.sip.chat_session import (
    AnswerLines,
    ChatSession,
    ChatSessions,
    ChatSessionState,
    ChatUnavailable,
)
from phone.sip.digest import Credentials
from phone.sip.message import SipMessage
from phone.sip.message_stream import CallChat, CallMessageStream
from phone.sip.packages import EventPackage
from phone.sip.pager import MessageReceiver, PagerInbox
from phone.sip.publication import Publication, PublicationState
from phone.sip.request import (
    ProgressCallback,
    ReferProgress,
    SendError,
    send_refer,
    send_request,
)
from phone.sip.sdp import MediaSection, MessageSession, SdpError, SessionDescription
from phone.sip.subscription import (
    EndCallback,
    Notification,
    NotificationCallback,
    Subscription,
    SubscriptionEnded,
    SubscriptionState,
)
from phone.store import PluginTables, StoreError
from phone.uri import parse_sip_uri

if TYPE_CHECKING:
    from phone.phone import Phone
    from phone.sip.rawsip import RawSip
    from phone.sip.services import SipServices
    from phone.sip.subscription import Subscriber

__all__ = [
    "LED_OFF",
    "AccountIdentity",
    "AnswerLines",
    "CallInfo",
    "CallState",
    "ChatSession",
    "ChatSessionState",
    "ChatSessions",
    "ChatUnavailable",
    "Contact",
    "Credentials",
    "Direction",
    "EndCallback",
    "EventPackage",
    "Led",
    "LedColor",
    "LedMark",
    "LedPattern",
    "MediaSection",
    "MessageSession",
    "MessageReceiver",
    "Notification",
    "NotificationCallback",
    "PhoneApi",
    "PluginTables",
    "Publication",
    "PublicationState",
    "ReferProgress",
    "SdpError",
    "SessionDescription",
    "SendError",
    "SipMessage",
    "StoreError",
    "Subscription",
    "SubscriptionEnded",
    "SubscriptionState",
    "address_key",
    "contact_index",
]

log = logging.getLogger(__name__)

NOT_STARTED = "the SIP stack is not started yet (wait for phone_started)"
CONFIG_SOURCE = "config"  # the contacts of the config file, written by the core at start


@dataclass(frozen=True)
class AccountIdentity:
    """Who the phone is: its SIP account without the password (see `PhoneApi.credentials`)."""

    aor: str  # address of record, e.g. sip:alice@example.test
    display_name: str | None
    username: str  # the digest user name
    registrar: str | None  # None in direct (peer-to-peer) mode
    outbound_proxy: str | None

    @property
    def direct(self) -> bool:
        """No registrar: no presence server, no XCAP, peers reached by address."""
        return self.registrar is None

    @property
    def domain(self) -> str:
        """The AOR's host, e.g. where an XCAP root may be found (Blink does so)."""
        return parse_sip_uri(self.aor).host


class PhoneApi:
    """The phone as a plugin sees it (one per phone; the hooks' `phone` argument)."""

    def __init__(self, phone: Phone) -> None:
        self._phone = phone
        self._chats: ChatSessions | None = None
        self._inbox: PagerInbox | None = None

    # -- the account ------------------------------------------------------
    @property
    def account(self) -> AccountIdentity:
        """The SIP account's identity: AOR, display name, user name, registrar."""
        acc = self._phone.config.account
        return AccountIdentity(
            acc.uri, acc.display_name, acc.username, acc.registrar, acc.outbound_proxy
        )

    def credentials(self) -> Credentials | None:
        """The account's digest credentials, for services that take the SIP
        account's (XCAP, an MSRP relay); None when the account has no password.
        Never log them: their repr hides the password."""
        acc = self._phone.config.account
        return Credentials(acc.username, acc.password) if acc.password else None

    @property
    def local_address(self) -> str:
        """The IP address peers reach the phone at (its SIP Contact and SDP): where
        a plugin's own listener (MSRP) binds and what it puts in its SDP."""
        return self._phone.sip.local_address

    @property
    def registered(self) -> bool:
        """Whether the account is registered now (always False in direct mode)."""
        return self._phone.registered

    # -- calls --------------------------------------------------------------
    def calls(self) -> tuple[CallInfo, ...]:
        """Snapshots of the calls that are not over yet, oldest first."""
        return tuple(dataclasses.replace(c.info) for c in self._phone.calls if c.info.active)

    def dial(self, uri: str, name: str | None = None) -> CallInfo | None:
        """Place an audio call to `uri`, also while another call goes on (to make
        a conference room, say); the new call's snapshot, or None when it could
        not be placed (shown on the screen and logged). `call_changed` follows
        its progress."""
        call = self._phone.dial(uri, name)
        return None if call is None else dataclasses.replace(call.info)

    def transfer(
        self, call_id: int, refer_to: str, on_progress: ProgressCallback | None = None
    ) -> bool:
        """Send a REFER inside the call `call_id` (RFC 3515), asking the remote
        party to send a request to `refer_to`: to join a conference room,
        RFC 4579 section 5.5. `on_progress` gets a `ReferProgress` for each
        sipfrag NOTIFY ("100 Trying", "200 OK" with `final`). The call stays up
        until ended. False when there is no such confirmed call or pjsua
        refused (logged)."""
        for call in self._phone.calls:
            if call.info.id == call_id and call.info.state is CallState.CONFIRMED:
                try:
                    call.transfer(refer_to, on_progress)
                except self._phone.sip.pj.Error as exc:
                    log.warning(
                        "REFER in the call with %s failed: %s", call.info.remote_uri, exc.reason
                    )
                    return False
                log.info("REFER %s to %s", call.info.remote_uri, refer_to)
                return True
        return False

    def end_call(self, call_id: int) -> bool:
        """End the call `call_id` as the `end` button would: a call ringing here is
        refused with `calls.reject_code`, any other is hung up or cancelled.
        False when no such call is going on."""
        for call in self._phone.calls:
            if call.info.id == call_id and call.info.active:
                self._phone.end_call(call)
                return True
        return False

    # -- do not disturb -----------------------------------------------------
    @property
    def dnd(self) -> bool:
        """Whether do-not-disturb is on."""
        return self._phone.dnd

    def set_dnd(self, on: bool) -> None:
        """Switch do-not-disturb; `dnd_changed` follows."""
        self._phone.set_dnd(on)

    # -- SIP: subscriptions, publications, requests, chat ---------------------
    def subscribe(
        self,
        event: EventPackage | str,
        target: str,
        on_notification: NotificationCallback,
        *,
        accept: Sequence[str] | None = None,
        eventlist: bool = False,
        expires: int = 600,
        on_end: EndCallback | None = None,
    ) -> Subscription:
        """Subscribe to `event` at `target` (RFC 6665): presence (an RLS list with
        `eventlist=True`), presence.winfo, dialog, conference, xcap-diff. Each
        NOTIFY arrives parsed once as a `Notification`; the subscription
        refreshes itself, recovers from a restarted server, and ends with
        `end()` or with the phone (`on_end` says why it ended otherwise)."""
        return self._subscriber().subscribe(
            event,
            target,
            on_notification,
            accept=accept,
            eventlist=eventlist,
            expires=expires,
            on_end=on_end,
        )

    def publish(
        self, event: EventPackage | str, content_type: str, *, expires: int = 600
    ) -> Publication:
        """A publication of our own `event` state (RFC 3903): `publish(body)` on it
        sends or modifies, `remove()` withdraws; it refreshes itself and is
        removed when the phone stops."""
        return self._services().publish(event, content_type, expires=expires)

    def serve_presence(
        self, is_open: bool, activity: Activity | None = None, note: str | None = None
    ) -> None:
        """What the phone answers, as its own presence agent (RFC 3856), to
        presence SUBSCRIBEs sent straight to it: in direct mode, where no server
        does. Every watcher is NOTIFYed of the change (PIDF with RPID; the
        activities carried are away and busy, on-the-phone goes as busy)."""
        account = self._phone.sip.account
        if account is None:
            raise RuntimeError(NOT_STARTED)
        account.serve_presence(is_open, activity, note)

    async def send_message(
        self, target: str, body: bytes, content_type: str = "text/plain"
    ) -> SipMessage | None:
        """Send a pager-mode MESSAGE (RFC 3428) to `target`; its final response, or
        None when none came. Raises `SendError` when it cannot be built."""
        return await send_request(
            self._raw(),
            self._subscriber().identity,
            "MESSAGE",
            target,
            content_type=content_type,
            body=body,
        )

    async def refer(
        self, target: str, refer_to: str, on_progress: ProgressCallback | None = None
    ) -> SipMessage | None:
        """Ask `target` (a conference focus, say) to send a request to `refer_to`
        (RFC 3515, outside a dialog; RFC 4579 section 5 for conferences, e.g.
        `<sip:bob@example.test;method=BYE>`). The final response (202 when
        accepted) or None. While accepted, `on_progress` gets a `ReferProgress`
        for each status of the referred request ("180 Ringing", then "200 OK"
        with `final`)."""
        return await send_refer(self._raw(), self._subscriber(), target, refer_to, on_progress)

    def receive_messages(self, receiver: MessageReceiver) -> None:
        """Take pager-mode MESSAGEs (RFC 3428) sent to the phone outside a dialog:
        `receiver` gets each one (a `SipMessage`: `from_`, `content_type`,
        `body`) once, and returns the status to answer, 200 when taken or 415
        for a body it does not read. Until a plugin calls this pjsua answers
        200 and drops the text. One plugin only: a second call raises
        RuntimeError."""
        if self._inbox is not None:
            raise RuntimeError("incoming messages are already taken by another plugin")
        self._inbox = PagerInbox(self._raw(), receiver)

    def chat_sessions(
        self,
        local_path: Callable[[str], tuple[str, ...]],
        on_session: Callable[[ChatSession], None],
        on_end: Callable[[ChatSession], None],
        answer_lines: AnswerLines | None = None,
        on_moved: Callable[[ChatSession], None] | None = None,
    ) -> ChatSessions:
        """Take chat-only INVITEs (m=message only, as Blink sends): until a plugin
        calls this they get 488. `local_path(protocol)` gives our MSRP path for
        an SDP answer; `answer_lines(offer, section)` adds lines to the answer's
        m=message section (RFC 5547 file attributes) or raises `SdpError` to
        refuse with 488; sessions are reported as they start and end (each
        with the peer's SDP in `remote_sdp`), and `on_moved` when a re-offer
        changed the peer's MSRP path (RFC 4975 section 8.4: `message` then
        holds the new path, to connect to or wait on). One plugin only: a
        second call raises RuntimeError."""
        self._chats = self._services().chat_sessions(
            local_path, on_session, on_end, answer_lines, on_moved
        )
        return self._chats

    def chat_in_calls(
        self,
        local_path: Callable[[str], tuple[str, ...]],
        on_moved: Callable[[int, MessageSession], None] | None = None,
        answer_lines: AnswerLines | None = None,
        on_ended: Callable[[int], None] | None = None,
    ) -> None:
        """Offer and answer an m=message line (MSRP) in audio calls from now on, as
        Blink does for chat during a call; `local_path(protocol)` gives our path
        (`SdpError` where there is none in that protocol: the line is declined),
        `answer_lines` adds lines to our answer (a=fingerprint). `call_chat(call_id)`
        then says what was agreed and `call_chat_sdp(call_id)` the peer's SDP;
        `on_moved(call_id, session)` tells when a re-INVITE changed the peer's
        path or protocol, or started the chat again (RFC 4975 section 8.4: a new
        connection to make or wait for), `on_ended(call_id)` when the peer's
        offer ended it (its line at port 0, or one we declined)."""
        account = self._phone.sip.account
        if account is None:
            raise RuntimeError(NOT_STARTED)
        account.call_chat = CallChat(local_path, on_moved, answer_lines, on_ended)

    def call_chat(self, call_id: int) -> MessageSession | None:
        """The message session agreed in call `call_id` (paths, who connects), or
        None when it has none (not offered, declined, ended, or no such call)."""
        stream = self._call_stream(call_id)
        return stream.session if stream is not None else None

    def call_chat_sdp(self, call_id: int) -> SessionDescription | None:
        """The peer's SDP that agreed the message session of call `call_id` (its
        a=fingerprint for msrps), or None."""
        stream = self._call_stream(call_id)
        return stream.remote_sdp if stream is not None and stream.session is not None else None

    def _call_stream(self, call_id: int) -> CallMessageStream | None:
        for call in self._phone.calls:
            if call.info.id == call_id:
                return call.message_stream
        return None

    def end_call_chat(self, call_id: int) -> bool:
        """End the chat of call `call_id` while its audio goes on: the peer gets a
        re-INVITE whose m=message line has port 0 (RFC 3264 section 8.2). False
        when that call is not up or has no chat agreed."""
        for call in self._phone.calls:
            if call.info.id == call_id:
                return call.end_chat()
        return False

    def offer_chat(self, target: str) -> ChatSession:
        """Start a chat-only session with `target` (an INVITE with only m=message),
        reported through the callbacks given to `chat_sessions`, which must come
        first. Raises `ChatUnavailable` when chat sessions are off."""
        if self._chats is None:
            raise ChatUnavailable("call chat_sessions() before offer_chat()")
        return self._chats.offer(target, self._subscriber().identity)

    def _services(self) -> SipServices:
        services = self._phone.sip.services
        if services is None:
            raise RuntimeError(NOT_STARTED)
        return services

    def _subscriber(self) -> Subscriber:
        """Owns the account's subscriptions and `identity`: the AOR, Contact, route
        and credentials of every request we build ourselves."""
        return self._services().subscriber

    def _raw(self) -> RawSip:
        return self._services().raw

    # -- contacts -------------------------------------------------------------
    def contacts(self) -> tuple[Contact, ...]:
        """Every contact, in button order (page after page)."""
        return self._phone.buttons.contacts

    def contact_on(self, button: str) -> Contact | None:
        """The contact on button `contact-N` of the page shown, or None."""
        return self._phone.buttons.contact_for(button)

    def find_contact(self, uri: str) -> Contact | None:
        """The contact with the same address as `uri` (user@host), or None."""
        return self._phone.buttons.find(uri)

    def replace_contacts(self, source: str, contacts: Sequence[Contact]) -> None:
        """Make `contacts` the whole list of `source` (e.g. "xcap"), kept in the
        store so they are on the buttons at the next start even offline. The
        buttons show every source's contacts, by source name, then in the
        order given; `contacts_changed` follows. The "config" source is the
        config file's: a plugin cannot replace it (ValueError), nor give
        a contact that is not a SIP URI (ValueError naming it)."""
        if source == CONFIG_SOURCE:
            raise ValueError("the config source's contacts come from the config file")
        for contact in contacts:
            try:
                parse_sip_uri(contact.uri)
            except ValueError as exc:
                raise ValueError(f"contact {contact.name!r}: {exc}") from None
        self._phone.store.replace_contacts(
            source,
            [(c.name, c.uri) for c in contacts],
            blf={c.uri for c in contacts if c.blf},
            conference={c.uri for c in contacts if c.conference},
        )
        self._phone.load_contacts()

    def set_presence_list(self, uri: str | None) -> None:
        """Say which RLS URI (RFC 4662) watches the contacts' presence in one
        subscription, as found on the server (the user's rls-services
        document); None when there is none. `presence_list_changed` follows,
        for the plugin that watches presence."""
        if uri is not None:
            parse_sip_uri(uri)  # ValueError for an address that is not a SIP URI
        self._phone.plugins.call("presence_list_changed", phone=self, uri=uri)

    def pressed_at(self, button: str) -> float | None:
        """When the press on `button` that is still going on began (the loop's
        clock, `time.monotonic()`), or None when the button is up: a plugin that
        wants a longer hold than `long_press` checks, on a timer, that the same
        press is still held (the conference plugin's removal)."""
        return self._phone.presses.down_at(button)

    # -- LEDs and screen ------------------------------------------------------
    def set_led(self, uri: str, led: Led | LedMark, layer: str, *, urgent: bool = False) -> None:
        """Show `led` for the contact `uri` on the plugin's own `layer` (its name,
        say). The core's call layer wins, then the `urgent` layers (something
        waits for the person: unread messages, missed calls), then the others
        (presence), each in the order first used; a layer is urgent or not from
        its first use. LED_OFF lets the layers below show; a `LedMark` blinks
        what they show in its pattern, keeping their colour."""
        self._check_layer(layer)
        self._phone.buttons.set_led(uri, led, layer, urgent)

    def clear_led(self, uri: str, layer: str) -> None:
        """Remove the contact's LED from `layer`."""
        self._check_layer(layer)
        self._phone.buttons.clear_led(uri, layer)

    def led_for(self, uri: str) -> Led:
        """What the contact's LED shows now, all layers together."""
        return self._phone.buttons.led_for(uri)

    @staticmethod
    def _check_layer(layer: str) -> None:
        if layer == CALL_LAYER:
            raise ValueError(f"the {CALL_LAYER!r} LED layer is the core's")

    def show_message(self, lines: Sequence[str], seconds: float = 3.0) -> None:
        """Overlay the screen's body with `lines` (21 columns, 3 rows) for `seconds`."""
        self._phone.screen.message(lines, seconds)

    def show_image(self, image: Image.Image, seconds: float | None = None) -> None:
        """Cover the whole display with `image`, scaled to fit 128x64 and dithered
        to black and white, until the next button press (which then does
        nothing else), or for `seconds`. The control interface's `screen`
        says `(image)` meanwhile."""
        self._phone.screen.image(image, seconds)
        self._phone.redraw()

    def set_panel(self, lines: Sequence[str] | None) -> None:
        """Show `lines` (21 columns, 3 rows) instead of the screen's body until
        called with None: a plugin's own view, such as a conference roster.
        `show_message` still overlays it. Drawn at once."""
        self._phone.screen.panel = None if lines is None else list(lines)
        self._phone.redraw()

    def set_indicator(self, name: str, text: str) -> None:
        """Set the plugin's footer flag `name` (e.g. "W:2"); "" removes it. Drawn at
        the next redraw."""
        self._phone.screen.indicators[name] = text

    def redraw(self) -> None:
        """Draw the screen now (it is also redrawn four times a second)."""
        self._phone.redraw()

    # -- storage --------------------------------------------------------------
    def tables(self, plugin: str, migrations: Sequence[Sequence[str]]) -> PluginTables:
        """The plugin's own SQLite tables, named `<plugin>_...`: `migrations[i]`
        takes them from version i to i + 1 (see `phone.store`). Raises
        `StoreError` when the stored version is newer or a table is misnamed."""
        return PluginTables(self._phone.store, plugin, migrations)

    def data_dir(self, plugin: str) -> Path:
        """A directory for the plugin's files (received files, caches), next to
        the store; created on first use."""
        if not plugin.isidentifier():
            raise ValueError(f"plugin name {plugin!r} cannot name a directory")
        path = self._phone.store.path.parent / "plugins" / plugin
        path.mkdir(parents=True, exist_ok=True)
        return path
