"""The conference plugin's state machine: one room at a time, driven by calls,
buttons and the focus's NOTIFYs (see the package docstring for the flows)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from phone.api import (
    CallInfo,
    CallState,
    Contact,
    Direction,
    EventPackage,
    Notification,
    PhoneApi,
    ReferProgress,
    SendError,
    Subscription,
    SubscriptionEnded,
    SubscriptionState,
    address_key,
)
from phone.hookspecs import hookimpl
from phone.payloads.conference import ConferenceInfo
from phone.uri import parse_name_addr, parse_sip_uri
from plugins.conference import view

log = logging.getLogger(__name__)

NAME = "conference"  # the contact source of the rooms
CHANGE_SECONDS = 3.0  # "+ Carol" stays this long
RESULT_SECONDS = 3.0
PROGRESS_SECONDS = 30.0  # a referred phone rings until answered
WATCH_SECONDS = 1.0
NO_ROSTER_SECONDS = 5.0  # "joining..." becomes "(no roster)": the far end sends none
NOT_ALLOWED = (403, 405)


@dataclass(frozen=True)
class ConferenceSettings:
    rooms: tuple[tuple[str, str], ...]  # (name, uri)
    factory: str | None  # where a one-to-one call's room is made
    expires: int  # of the conference subscription
    remove_hold_ms: int = 2000  # how long a participant's button is held to remove them


@dataclass
class Room:
    """The conference the phone is in."""

    call_id: int
    uri: str  # the conference URI (the focus's Contact), subscribed and REFERred to
    name: str  # what the screen calls it before the focus gives a subject
    subscription: Subscription | None = None
    info: ConferenceInfo | None = None
    offset: int = 0
    last_notify: float = field(default_factory=time.monotonic)
    joined: float = field(default_factory=time.monotonic)


@dataclass
class Escalation:
    """A one-to-one call on its way into a fresh room (RFC 4579 section 5.5)."""

    peer_call_id: int
    peer_uri: str
    peer_name: str
    room_call_id: int | None = None
    referred: bool = False


def _user(uri: str) -> str:
    try:
        parsed = parse_sip_uri(uri)
    except ValueError:
        return uri
    return parsed.user or parsed.host


def _focus_uri(call: CallInfo) -> str:
    """The conference URI: the focus's Contact (RFC 4579 section 3.3), else who we called."""
    if call.isfocus and call.remote_contact:
        try:
            return str(parse_name_addr(call.remote_contact)[1])
        except ValueError:
            log.warning("focus Contact %r does not parse", call.remote_contact)
    return call.remote_uri


class ConferencePlugin:
    def __init__(self, settings: ConferenceSettings) -> None:
        self.settings = settings
        self.phone: PhoneApi | None = None
        self.room: Room | None = None
        self.escalation: Escalation | None = None
        self.invited_by: dict[int, str] = {}  # ringing focus calls -> room name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watch: asyncio.TimerHandle | None = None

    # -- names --------------------------------------------------------------
    def _name(self, uri: str, display: str | None = None) -> str:
        assert self.phone is not None
        contact = self.phone.find_contact(uri)
        if contact is not None:
            return contact.name
        if address_key(uri) == address_key(self.phone.account.aor):
            return "You"
        return display or _user(uri)

    def _room_name(self, call: CallInfo) -> str:
        return self._name(call.remote_uri, call.remote_name)

    # -- hooks --------------------------------------------------------------
    @hookimpl
    def phone_started(self, phone: PhoneApi) -> None:
        self.phone = phone
        phone.replace_contacts(
            NAME, [Contact(name, uri, conference=True) for name, uri in self.settings.rooms]
        )

    @hookimpl
    def phone_stopping(self, phone: PhoneApi) -> None:
        if self.room is not None and self.room.subscription is not None:
            self.room.subscription.end()
        if self._watch is not None:
            self._watch.cancel()

    @hookimpl
    def call_changed(self, phone: PhoneApi, call: CallInfo) -> None:
        self.phone = phone
        if call.direction is Direction.IN and call.state is CallState.RINGING and call.isfocus:
            self.invited_by[call.id] = self._room_name(call)
            phone.set_panel([f"Conference: {self.invited_by[call.id]}", "answer / end"])
            return
        if self.invited_by.pop(call.id, None) is not None and self.room is None:
            phone.set_panel(None)
        room = self.room
        if room is not None and call.id == room.call_id:
            if call.state is CallState.DISCONNECTED:
                self._leave("Left", room.name)
            return
        if call.state is CallState.CONFIRMED and room is None and self._is_room(call):
            self._join(call)
        elif call.state is CallState.DISCONNECTED:
            self._call_ended(call)

    def _is_room(self, call: CallInfo) -> bool:
        assert self.phone is not None
        if call.isfocus:
            return True
        contact = self.phone.find_contact(call.remote_uri)
        escalation = self.escalation
        return (contact is not None and contact.conference) or (
            escalation is not None and escalation.room_call_id == call.id
        )

    def _call_ended(self, call: CallInfo) -> None:
        assert self.phone is not None
        escalation = self.escalation
        if escalation is None:
            return
        if call.id == escalation.peer_call_id:
            self.escalation = None
        elif call.id == escalation.room_call_id:
            self.escalation = None
            self.phone.show_message(
                ["No room:", f"{call.code} {call.reason or ''}"], RESULT_SECONDS
            )

    @hookimpl(tryfirst=True)  # before presence, which takes long presses on contacts
    def button_pressed(self, phone: PhoneApi, button: str, long_press: bool) -> bool | None:
        self.phone = phone
        room = self.room
        if button == "conference":
            if room is None:
                self._escalate()
            return True
        if room is None:
            return None
        if button in ("volume_up", "volume_down"):
            step = 1 if button == "volume_down" else -1
            room.offset = min(max(0, room.offset + step), view.max_offset(room.info))
            self._draw()
            return True
        contact = phone.contact_on(button)
        if contact is None or contact.conference:
            return None
        here = {address_key(uri) for uri in view.present(room.info)}
        if address_key(contact.uri) in here:
            if long_press:
                self._hold_to_remove(room, button, contact)
            else:
                phone.show_message([contact.name, "is in the room", self._hold_text()], 2.0)
        elif long_press:
            return None
        else:
            self._refer(room, contact, "INVITE")
        return True

    @hookimpl
    def control_state(self, phone: PhoneApi) -> Mapping[str, object]:
        room = self.room
        return {"conference": None if room is None else view.describe(room.uri, room.info)}

    # -- joining and leaving ------------------------------------------------
    def _join(self, call: CallInfo) -> None:
        assert self.phone is not None
        room = Room(call.id, _focus_uri(call), self._room_name(call))
        self.room = room
        log.info("in conference %s (%s)", room.uri, "focus" if call.isfocus else "no isfocus")
        room.subscription = self.phone.subscribe(
            EventPackage.CONFERENCE,
            room.uri,
            self._notified,
            expires=self.settings.expires,
            on_end=self._subscription_ended,
        )
        self._draw()
        self._schedule_watch()
        escalation = self.escalation
        if escalation is not None and escalation.room_call_id == call.id:
            self._invite_peer(room, escalation)

    def _leave(self, what: str, name: str) -> None:
        assert self.phone is not None
        room, self.room = self.room, None
        if room is None:
            return
        if room.subscription is not None:
            room.subscription.end()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        log.info("%s conference %s", what.lower(), room.uri)
        self.phone.set_panel(None)
        self.phone.show_message([what, name], RESULT_SECONDS)

    def _schedule_watch(self) -> None:
        self._watch = asyncio.get_running_loop().call_later(WATCH_SECONDS, self._check_focus)

    def _check_focus(self) -> None:
        """A focus that vanished sends nothing: once the subscription has failed
        for longer than it would have lived, the room is gone."""
        room, phone = self.room, self.phone
        if room is None or phone is None or room.subscription is None:
            return
        state = room.subscription.state
        failing = state in (SubscriptionState.RETRYING, SubscriptionState.TERMINATED)
        if failing and room.info is None:  # never a roster: a room without conference state
            log.info("conference %s: no roster (the SUBSCRIBE failed)", room.uri)
            room.subscription.end()
            room.subscription = None
            self._draw()
            return
        # Once it had a roster, a subscription that is not active (retrying, or a
        # new SUBSCRIBE between retries) with no NOTIFY for `expires` has lapsed.
        lapsed = time.monotonic() - room.last_notify > self.settings.expires
        if room.info is not None and state is not SubscriptionState.ACTIVE and lapsed:
            log.warning("conference %s: the focus is gone", room.uri)
            phone.end_call(room.call_id)
            self._leave("Conference lost", room.name)
            return
        if room.info is None:
            self._draw()
        self._schedule_watch()

    def _subscription_ended(self, ended: SubscriptionEnded) -> None:
        room = self.room
        if room is None or ended.target != room.uri or ended.reason == "ended":
            return
        if room.info is None:  # a room without conference state: the call goes on
            log.info("conference %s: no roster (%s)", room.uri, ended.reason)
            room.subscription = None
            self._draw()
        else:
            room.last_notify = 0.0  # the focus ended it for good: the watch ends the room

    def _notified(self, notification: Notification) -> None:
        room, phone = self.room, self.phone
        if room is None or phone is None or notification.target != room.uri:
            return
        merged = notification.merged
        if notification.error is not None or not isinstance(merged, ConferenceInfo):
            return  # the subscription logged it; the last good roster stays
        room.last_notify = time.monotonic()
        if merged is room.info and room.info is not None:
            log.info(
                "conference %s: ignoring stale conference-info version %d (have %d)",
                room.uri,
                notification.document.version,
                room.info.version,
            )
            return
        first = room.info is None
        before = view.present(room.info)
        room.info = merged
        room.offset = min(room.offset, view.max_offset(merged))
        after = view.present(merged)
        self._draw()
        drawn_ns = time.perf_counter_ns()
        log.debug(
            "conference %s: roster of %d drawn at %d ns; NOTIFY at %d ns, drawn %.3f ms later",
            room.uri,
            len(after),
            drawn_ns,
            notification.received_ns,
            (drawn_ns - notification.received_ns) / 1e6,
        )
        lines = [] if first else view.changes(before, after, self._name)
        if lines:
            phone.show_message(lines, CHANGE_SECONDS)
        escalation = self.escalation
        here = {address_key(u) for u in after}
        if (
            escalation is not None
            and escalation.referred
            and address_key(escalation.peer_uri) in here
        ):
            self._peer_joined(escalation)

    def _draw(self) -> None:
        room, phone = self.room, self.phone
        if room is not None and phone is not None:
            lines = view.panel(room.name, room.info, room.offset, self._name)
            waited = time.monotonic() - room.joined > NO_ROSTER_SECONDS
            if room.info is None and (room.subscription is None or waited):
                lines[-1] = "(no roster)"
            phone.set_panel(lines)

    # -- changing who is in it (RFC 4579 section 5) ---------------------------
    def _hold_text(self) -> str:
        return f"hold {self.settings.remove_hold_ms / 1000:g} s to remove"

    def _hold_to_remove(self, room: Room, button: str, contact: Contact) -> None:
        """A long press on a participant: removed once the same press has lasted
        `remove_hold_ms` (a slip of the finger removes no one)."""
        assert self.phone is not None
        down_at = self.phone.pressed_at(button)
        if down_at is None:
            return  # already released
        loop = asyncio.get_running_loop()
        remaining = down_at + self.settings.remove_hold_ms / 1000 - loop.time()
        if remaining <= 0:
            self._refer(room, contact, "BYE")
            return
        # Until the hold is long enough, and a while after for one let go too soon.
        hint = [contact.name, "is in the room", self._hold_text()]
        self.phone.show_message(hint, remaining + RESULT_SECONDS)

        def held() -> None:
            if self.room is not room or self.phone is None:
                return
            if self.phone.pressed_at(button) == down_at:
                self._refer(room, contact, "BYE")
            else:
                log.info(
                    "not removing %s: let go before %d ms",
                    contact.uri,
                    self.settings.remove_hold_ms,
                )

        loop.call_later(remaining, held)

    def _refer(self, room: Room, contact: Contact, method: str) -> None:
        assert self.phone is not None
        # The contact's own URI, port included (a direct-mode phone listens on
        # its own port); only URI headers, which have no place in Refer-To, go.
        target = replace(parse_sip_uri(contact.uri), headers={})
        self._spawn(
            self._send_refer(self.phone, room, contact.name, f"<{target};method={method}>", method)
        )

    async def _send_refer(
        self, phone: PhoneApi, room: Room, name: str, refer_to: str, method: str
    ) -> None:
        doing = "Inviting" if method == "INVITE" else "Removing"
        phone.show_message([f"{doing} {name}\N{HORIZONTAL ELLIPSIS}"], RESULT_SECONDS)

        def progress(step: ReferProgress) -> None:
            if not step.final:
                phone.show_message(  # until the final status replaces it
                    [f"{doing} {name}\N{HORIZONTAL ELLIPSIS} {step.status}"], PROGRESS_SECONDS
                )
            elif 200 <= step.status < 300:
                done = "joined" if method == "INVITE" else "removed"
                phone.show_message([f"{name} {done}"], RESULT_SECONDS)
            else:
                phone.show_message([name, f"{step.status} {step.reason}"], RESULT_SECONDS)

        try:
            response = await phone.refer(room.uri, refer_to, progress)
        except SendError as exc:
            log.warning("REFER to %s not sent: %s", room.uri, exc)
            phone.show_message([name, "not sent"], RESULT_SECONDS)
            return
        status = None if response is None else response.status
        log.info("REFER %s to %s: %s", refer_to, room.uri, status)
        if status in NOT_ALLOWED:
            phone.show_message([f"{doing} {name}:", "not allowed"], RESULT_SECONDS)
        elif status is None or not 200 <= status < 300:
            phone.show_message(
                [f"{doing} {name}:", f"failed ({status or 'no answer'})"], RESULT_SECONDS
            )

    def _escalate(self) -> None:
        """`conference` in a one-to-one call: INVITE the factory for a room."""
        phone = self.phone
        assert phone is not None
        calls = [c for c in phone.calls() if c.state is CallState.CONFIRMED]
        if len(calls) != 1 or self.escalation is not None:
            phone.show_message(["Conference:", "needs one call"], RESULT_SECONDS)
            return
        if self.settings.factory is None:
            phone.show_message(["Conference:", "no factory set"], RESULT_SECONDS)
            return
        peer = calls[0]
        self.escalation = Escalation(peer.id, peer.remote_uri, self._room_name(peer))
        made = phone.dial(self.settings.factory, "Conference")
        if made is None:
            self.escalation = None
            return
        self.escalation.room_call_id = made.id
        log.info("making a room for the call with %s", peer.remote_uri)
        phone.show_message(["Making a room", f"for {self.escalation.peer_name}"], RESULT_SECONDS)

    def _invite_peer(self, room: Room, escalation: Escalation) -> None:
        """REFER the peer into the room in our one-to-one dialog (RFC 4579 section 5.5)."""
        assert self.phone is not None
        name = escalation.peer_name

        def progress(step: ReferProgress) -> None:
            if step.final and 200 <= step.status < 300:
                self._peer_joined(escalation)
            elif step.final:
                self.escalation = None
                assert self.phone is not None
                self.phone.show_message([name, f"{step.status} {step.reason}"], RESULT_SECONDS)

        escalation.referred = self.phone.transfer(
            escalation.peer_call_id, f"<{room.uri}>", progress
        )
        if not escalation.referred:
            self.escalation = None
            self.phone.show_message([f"Inviting {name}:", "failed"], RESULT_SECONDS)

    def _peer_joined(self, escalation: Escalation) -> None:
        """The peer is in the room: the one-to-one call has done its job."""
        if self.escalation is not escalation:
            return
        self.escalation = None
        assert self.phone is not None
        log.info("%s is in the room: ending the one-to-one call", escalation.peer_uri)
        self.phone.end_call(escalation.peer_call_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
