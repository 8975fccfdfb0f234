"""What the phone publishes about its own user (RFC 3903 bodies).

Presence (PIDF + RPID, RFC 3863/4480): open and available once registered;
busy with the note "Do not disturb" while DND is on; on-the-phone during any
call; closed on shutdown. Dialog state (RFC 4235), so that watchers with a
busy-lamp field see our calls ring and connect even when presence says
available: one `<dialog>` per call, full state, the version counting up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from phone.api import CallInfo, CallState, Direction
from phone.payloads import dialoginfo, pidf
from phone.payloads.rpid import Activity
from phone.payloads.sequence import DocumentState

DND_NOTE = "Do not disturb"


class OwnStatus(StrEnum):
    AVAILABLE = "available"
    ON_THE_PHONE = "on-the-phone"
    DND = "dnd"
    CLOSED = "closed"


def own_status(dnd: bool, calls: Iterable[CallInfo]) -> OwnStatus:
    """DND wins over a call: the watcher should not try us either way."""
    if dnd:
        return OwnStatus.DND
    if any(c.active for c in calls):
        return OwnStatus.ON_THE_PHONE
    return OwnStatus.AVAILABLE


@dataclass(frozen=True)
class PresenceTerms:
    """A status in PIDF's terms: basic open or closed, RPID activities, a note."""

    basic: pidf.BasicStatus
    activities: tuple[Activity, ...] = ()
    note: str | None = None


TERMS = {
    OwnStatus.AVAILABLE: PresenceTerms(pidf.BasicStatus.OPEN),
    OwnStatus.DND: PresenceTerms(pidf.BasicStatus.OPEN, (Activity.BUSY,), DND_NOTE),
    OwnStatus.ON_THE_PHONE: PresenceTerms(
        pidf.BasicStatus.OPEN, (Activity.ON_THE_PHONE,), "On the phone"
    ),
    OwnStatus.CLOSED: PresenceTerms(pidf.BasicStatus.CLOSED),
}


def presence_body(aor: str, status: OwnStatus) -> bytes:
    terms = TERMS[status]
    return pidf.build_user_presence(aor, terms.basic, activities=terms.activities, note=terms.note)


_DIALOG_STATES = {
    CallState.CALLING: dialoginfo.DialogState.TRYING,
    CallState.RINGING: dialoginfo.DialogState.EARLY,
    CallState.EARLY: dialoginfo.DialogState.EARLY,
    CallState.CONFIRMED: dialoginfo.DialogState.CONFIRMED,
    CallState.DISCONNECTED: dialoginfo.DialogState.TERMINATED,
}


def dialog_body(aor: str, version: int, calls: Iterable[CallInfo]) -> bytes:
    """A full dialog-info document of `calls` (RFC 4235 section 4.1)."""
    dialogs = tuple(
        dialoginfo.Dialog(
            id=f"call-{call.id}-{int(call.started_at * 1000)}",
            state=_DIALOG_STATES[call.state],
            direction=(
                dialoginfo.Direction.RECIPIENT
                if call.direction is Direction.IN
                else dialoginfo.Direction.INITIATOR
            ),
            remote=dialoginfo.Participant(identity=call.remote_uri),
        )
        for call in calls
    )
    return dialoginfo.build(
        dialoginfo.DialogInfo(
            version=version, state=DocumentState.FULL, entity=aor, dialogs=dialogs
        )
    )
