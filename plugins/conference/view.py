"""What the conference screen and the control interface say about a room.

Pure functions of a merged conference-info document (RFC 4575), so the
benchmark and the tests can draw a roster without a phone: the panel (the
room and its count, then the participants from a scroll offset), the
"+ Carol" / "− Bob" lines of who came and went, and the control `state`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phone.payloads.conference import ConferenceInfo, EndpointStatus, User

NamePeople = Callable[[str, str | None], str]  # (uri, display name) -> what the screen says
PANEL_ROWS = 3  # the screen's body
LIST_ROWS = PANEL_ROWS - 1  # under the room's line


@dataclass(frozen=True)
class Participant:
    uri: str
    name: str | None  # the focus's display-text
    status: str  # RFC 4575 endpoint status, e.g. "connected", "dialing-out"


def _status(user: User) -> EndpointStatus | None:
    """The user's most present endpoint status (connected beats dialing-out)."""
    statuses = [e.status for e in user.endpoints if e.status is not None]
    for wanted in (EndpointStatus.CONNECTED, EndpointStatus.ON_HOLD):
        if wanted in statuses:
            return wanted
    return statuses[0] if statuses else None


def participants(info: ConferenceInfo | None) -> tuple[Participant, ...]:
    """Everyone the focus lists with an endpoint that is not gone, in its order."""
    if info is None:
        return ()
    people = []
    for user in info.users:
        status = _status(user)
        if status is None or status is EndpointStatus.DISCONNECTED:
            continue
        people.append(Participant(user.entity, user.display_text, status.value))
    return tuple(people)


def present(info: ConferenceInfo | None) -> dict[str, str | None]:
    """The connected participants: URI -> display name."""
    return {u.entity: u.display_text for u in (info.users if info else ()) if u.connected}


def count(info: ConferenceInfo | None) -> int:
    """The number of people in the room: the focus's `user-count`, else those connected."""
    state = None if info is None else info.conference_state
    if state is not None and state.user_count is not None:
        return state.user_count
    return len(present(info))


def subject(info: ConferenceInfo | None) -> str | None:
    description = None if info is None else info.description
    return None if description is None else description.subject or description.display_text


def max_offset(info: ConferenceInfo | None) -> int:
    return max(0, len(participants(info)) - LIST_ROWS)


def panel(room: str, info: ConferenceInfo | None, offset: int, name: NamePeople) -> list[str]:
    """The body: "<subject or room> (<count>)", then the participants from `offset`."""
    lines = [f"{subject(info) or room} ({count(info)})"]
    for person in participants(info)[offset : offset + LIST_ROWS]:
        label = name(person.uri, person.name)
        if person.status != EndpointStatus.CONNECTED.value:
            label += f" {person.status}"
        lines.append(label)
    if info is None:
        lines.append("joining...")
    return lines


def changes(
    before: dict[str, str | None], after: dict[str, str | None], name: NamePeople
) -> list[str]:
    """One line per arrival ("+ Carol") and departure ("− Bob")."""
    lines = [f"+ {name(uri, after[uri])}" for uri in after if uri not in before]
    lines += [f"\N{MINUS SIGN} {name(uri, before[uri])}" for uri in before if uri not in after]
    return lines


def describe(uri: str, info: ConferenceInfo | None) -> dict[str, object]:
    """The control interface's `conference` value (README)."""
    return {
        "uri": uri,
        "subject": subject(info),
        "count": count(info),
        "participants": [
            {"uri": p.uri, "name": p.name, "status": p.status} for p in participants(info)
        ],
    }
