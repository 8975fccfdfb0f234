"""One state per contact, from PIDF + RPID presence and RFC 4235 dialog state.

The rule, for a presence document (RFC 3863, RPID RFC 4480, data model RFC 4479):

1. Every source gives a state. A tuple (a service) that is `closed` gives
   offline; an `open` one gives what its own RPID activities, or those of the
   device it runs on, say, else available (idle user input: away). A person
   gives what its activities say, or nothing.
2. Activities map as: `busy` with a note saying "do not disturb" (or "DND")
   → dnd; `on-the-phone` → on-the-phone; `busy`, `meeting`, `appointment`,
   `presentation`, `performance`, `worship` → busy; `away`, meals,
   `holiday`, `vacation`, `travel`, `in-transit`, `steering`, `sleeping`,
   `shopping`, `permanent-absence` → away; anything else leaves available.
3. With at least one open tuple, the most relevant of the open tuples' and
   the persons' states wins, in this order: dnd, on-the-phone, busy, away,
   available. So a device on the phone beats an idle one, and a person's
   "away" beats a tuple that is merely open.
4. With every stated tuple closed: offline, whatever the person says (they
   cannot be reached). With no tuple stating a status: the persons' state,
   else unknown.
5. A NOTIFY without a body (the presentity published nothing, RFC 3856
   section 6.6.2) is offline; an unreadable one is unknown.

Dialog state (RFC 4235) overrides presence while a dialog lasts: a dialog
being set up towards the contact (recipient, trying/proceeding/early) is
ringing; a confirmed dialog, or one the contact is setting up, is in-call.
Our subscription waiting for authorization (RFC 6665 `pending`, or an RLS
instance `pending`) is pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from phone.payloads import pidf
from phone.payloads.dialoginfo import DialogInfo, DialogState
from phone.payloads.dialoginfo import Direction as DialogDirection
from phone.payloads.rpid import Activity, RichPresence, UserInputState


class ContactState(StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    BUSY = "busy"
    DND = "dnd"
    ON_THE_PHONE = "on_the_phone"
    IN_CALL = "in_call"  # from dialog state: confirmed, or the contact calling out
    RINGING = "ringing"  # from dialog state: a call to the contact rings
    PENDING = "pending"  # our subscription is not authorized yet
    OFFLINE = "offline"
    UNKNOWN = "unknown"


LABELS: dict[ContactState, str] = {
    ContactState.AVAILABLE: "Available",
    ContactState.AWAY: "Away",
    ContactState.BUSY: "Busy",
    ContactState.DND: "Do not disturb",
    ContactState.ON_THE_PHONE: "On the phone",
    ContactState.IN_CALL: "In a call",
    ContactState.RINGING: "Ringing",
    ContactState.PENDING: "Not authorized yet",
    ContactState.OFFLINE: "Offline",
    ContactState.UNKNOWN: "Unknown",
}

# Rule 3: the later, the more relevant.
_RELEVANCE = (
    ContactState.AVAILABLE,
    ContactState.AWAY,
    ContactState.BUSY,
    ContactState.ON_THE_PHONE,
    ContactState.DND,
)
_BUSY = frozenset(
    {
        Activity.BUSY,
        Activity.MEETING,
        Activity.APPOINTMENT,
        Activity.PRESENTATION,
        Activity.PERFORMANCE,
        Activity.WORSHIP,
    }
)
_AWAY = frozenset(
    {
        Activity.AWAY,
        Activity.BREAKFAST,
        Activity.LUNCH,
        Activity.DINNER,
        Activity.MEAL,
        Activity.HOLIDAY,
        Activity.VACATION,
        Activity.TRAVEL,
        Activity.IN_TRANSIT,
        Activity.STEERING,
        Activity.SLEEPING,
        Activity.SHOPPING,
        Activity.PERMANENT_ABSENCE,
    }
)
DND_NOTES = ("do not disturb", "dnd")


@dataclass(frozen=True)
class ContactPresence:
    """What one contact's button shows, and what a long press tells."""

    state: ContactState
    note: str | None = None


def _most_relevant(states: list[ContactState]) -> ContactState | None:
    ranked = [s for s in states if s in _RELEVANCE]
    return max(ranked, key=_RELEVANCE.index) if ranked else None


def _from_rich(rich: RichPresence, dnd_note: bool) -> ContactState | None:
    """Rule 2 for one person, tuple or device; None when it states no activity."""
    states: list[ContactState] = []
    if rich.activities is not None:
        for activity in rich.activities.values:
            if activity is Activity.BUSY and dnd_note:
                states.append(ContactState.DND)
            elif activity is Activity.ON_THE_PHONE:
                states.append(ContactState.ON_THE_PHONE)
            elif activity in _BUSY:
                states.append(ContactState.BUSY)
            elif activity in _AWAY:
                states.append(ContactState.AWAY)
            else:
                states.append(ContactState.AVAILABLE)
    if rich.user_input is not None and rich.user_input.state is UserInputState.IDLE:
        states.append(ContactState.AWAY)
    return _most_relevant(states)


def from_presence(presence: pidf.Presence) -> ContactPresence:
    """The contact's state by the rule in the module docstring (rules 1 to 4)."""
    note = presence.note()
    dnd_note = note is not None and any(word in note.lower() for word in DND_NOTES)
    devices = {d.device_id: d for d in presence.devices}
    persons = [s for p in presence.persons if (s := _from_rich(p.rich, dnd_note)) is not None]
    open_tuples: list[ContactState] = []
    closed = 0
    for service in presence.tuples:
        if service.basic is pidf.BasicStatus.CLOSED:
            closed += 1
        elif service.basic is pidf.BasicStatus.OPEN:
            device = devices.get(service.device_id) if service.device_id else None
            own = [_from_rich(service.rich, dnd_note)]
            if device is not None:
                own.append(_from_rich(device.rich, dnd_note))
            stated = [s for s in own if s is not None]
            open_tuples.append(_most_relevant(stated) or ContactState.AVAILABLE)
    if open_tuples:
        state = _most_relevant(open_tuples + persons)
        assert state is not None
    elif closed:
        state = ContactState.OFFLINE
    else:
        state = _most_relevant(persons) or ContactState.UNKNOWN
    return ContactPresence(state, note)


def from_dialogs(info: DialogInfo | None) -> ContactState | None:
    """The dialog override (RFC 4235), or None when the contact has no live dialog."""
    if info is None:
        return None
    setting_up = (DialogState.TRYING, DialogState.PROCEEDING, DialogState.EARLY)
    states: set[ContactState] = set()
    for dialog in info.dialogs:
        if dialog.state is DialogState.CONFIRMED:
            states.add(ContactState.IN_CALL)
        elif dialog.state in setting_up:
            if dialog.direction is DialogDirection.INITIATOR:
                states.add(ContactState.IN_CALL)
            else:
                states.add(ContactState.RINGING)
    if ContactState.RINGING in states:
        return ContactState.RINGING  # a call to pick up matters more than a busy line
    return ContactState.IN_CALL if states else None


def shown(presence: ContactPresence, dialog: ContactState | None) -> ContactPresence:
    """What the button shows: dialog state while it lasts, else presence."""
    if dialog is None:
        return presence
    return ContactPresence(dialog, presence.note)
