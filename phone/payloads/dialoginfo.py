"""Dialog state (RFC 4235): the calls of a monitored user, for busy-lamp LEDs.

A contact button lights red while its user has a confirmed dialog and blinks
while one rings (early). `merge` folds partial-state notifications into the
last full state (RFC 4235 §4.1): dialogs are keyed by `id`, and a terminated
dialog leaves the merged view once reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lxml import etree

from phone.payloads import sequence, xml
from phone.payloads.error import PayloadError
from phone.payloads.sequence import DocumentState

DIALOG_INFO_NS = "urn:ietf:params:xml:ns:dialog-info"
CONTENT_TYPE = "application/dialog-info+xml"
DOCUMENT = "dialog-info"


class Direction(StrEnum):
    """Whether the monitored user sent the INVITE (RFC 4235 `direction`)."""

    INITIATOR = "initiator"
    RECIPIENT = "recipient"


class DialogState(StrEnum):
    """The states of the dialog state machine of RFC 4235."""

    TRYING = "trying"
    PROCEEDING = "proceeding"
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogEvent(StrEnum):
    """Why a dialog changed state (RFC 4235 `<state event>`)."""

    CANCELLED = "cancelled"
    REJECTED = "rejected"
    REPLACED = "replaced"
    LOCAL_BYE = "local-bye"
    REMOTE_BYE = "remote-bye"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Participant:
    """One side of a dialog: its identity (AOR) and target (contact URI)."""

    identity: str | None = None
    display: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class Dialog:
    id: str
    state: DialogState
    event: DialogEvent | None = None
    code: int | None = None
    call_id: str | None = None
    local_tag: str | None = None
    remote_tag: str | None = None
    direction: Direction | None = None
    duration: int | None = None
    local: Participant | None = None
    remote: Participant | None = None


@dataclass(frozen=True)
class DialogInfo:
    version: int
    state: DocumentState
    entity: str
    dialogs: tuple[Dialog, ...] = ()

    @property
    def busy(self) -> bool:
        """Whether the user has an established call."""
        return any(d.state is DialogState.CONFIRMED for d in self.dialogs)

    @property
    def ringing(self) -> bool:
        """Whether a call is being set up for the user, and none is established."""
        setting_up = (DialogState.TRYING, DialogState.PROCEEDING, DialogState.EARLY)
        return not self.busy and any(d.state in setting_up for d in self.dialogs)


def _read_participant(element: xml.Element | None) -> Participant | None:
    if element is None:
        return None
    identity = xml.child(element, DIALOG_INFO_NS, "identity")
    target = xml.child(element, DIALOG_INFO_NS, "target")
    return Participant(
        identity=xml.text(identity),
        display=None if identity is None else identity.get("display"),
        target=None if target is None else xml.required_attr(target, "uri", DOCUMENT),
    )


def _read_dialog(element: xml.Element) -> Dialog:
    state = xml.child(element, DIALOG_INFO_NS, "state")
    if state is None:
        raise PayloadError(DOCUMENT, "<dialog> lacks its <state>")
    event = state.get("event")
    direction = element.get("direction")
    return Dialog(
        id=xml.required_attr(element, "id", DOCUMENT),
        state=xml.enum_value(DialogState, xml.text(state), DOCUMENT, "dialog <state>"),
        event=None
        if event is None
        else xml.enum_value(DialogEvent, event, DOCUMENT, "state event"),
        code=xml.optional_int(state.get("code"), DOCUMENT, "state code"),
        call_id=element.get("call-id"),
        local_tag=element.get("local-tag"),
        remote_tag=element.get("remote-tag"),
        direction=None
        if direction is None
        else xml.enum_value(Direction, direction, DOCUMENT, "dialog direction"),
        duration=xml.optional_int(
            xml.text(xml.child(element, DIALOG_INFO_NS, "duration")), DOCUMENT, "<duration>"
        ),
        local=_read_participant(xml.child(element, DIALOG_INFO_NS, "local")),
        remote=_read_participant(xml.child(element, DIALOG_INFO_NS, "remote")),
    )


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> DialogInfo:
    """Parse an application/dialog-info+xml body."""
    root = xml.parse(
        data, document=DOCUMENT, namespace=DIALOG_INFO_NS, root="dialog-info", limit=limit
    )
    return DialogInfo(
        version=xml.int_value(xml.required_attr(root, "version", DOCUMENT), DOCUMENT, "version"),
        state=xml.enum_value(
            DocumentState, xml.required_attr(root, "state", DOCUMENT), DOCUMENT, "state"
        ),
        entity=xml.required_attr(root, "entity", DOCUMENT),
        dialogs=tuple(_read_dialog(e) for e in xml.children(root, DIALOG_INFO_NS, "dialog")),
    )


def _write_participant(parent: xml.Element, name: str, participant: Participant) -> None:
    element = xml.sub(parent, DIALOG_INFO_NS, name)
    if participant.identity is not None:
        identity = xml.sub(element, DIALOG_INFO_NS, "identity", participant.identity)
        if participant.display is not None:
            identity.set("display", participant.display)
    if participant.target is not None:
        xml.sub(element, DIALOG_INFO_NS, "target").set("uri", participant.target)


def build(info: DialogInfo) -> bytes:
    """The application/dialog-info+xml body for `info`."""
    root = etree.Element(xml.qname(DIALOG_INFO_NS, "dialog-info"), nsmap={None: DIALOG_INFO_NS})
    root.set("version", str(info.version))
    root.set("state", info.state.value)
    root.set("entity", info.entity)
    for dialog in info.dialogs:
        element = xml.sub(root, DIALOG_INFO_NS, "dialog")
        element.set("id", dialog.id)
        for attribute, value in (
            ("call-id", dialog.call_id),
            ("local-tag", dialog.local_tag),
            ("remote-tag", dialog.remote_tag),
            ("direction", None if dialog.direction is None else dialog.direction.value),
        ):
            if value is not None:
                element.set(attribute, value)
        state = xml.sub(element, DIALOG_INFO_NS, "state", dialog.state.value)
        if dialog.event is not None:
            state.set("event", dialog.event.value)
        if dialog.code is not None:
            state.set("code", str(dialog.code))
        if dialog.duration is not None:
            xml.sub(element, DIALOG_INFO_NS, "duration", str(dialog.duration))
        if dialog.local is not None:
            _write_participant(element, "local", dialog.local)
        if dialog.remote is not None:
            _write_participant(element, "remote", dialog.remote)
    return xml.serialise(root)


def merge(current: DialogInfo | None, update: DialogInfo) -> DialogInfo:
    """The state after `update` (RFC 4235 §4.1): stale ones leave `current` as is,
    a partial one after a gap raises `VersionGap`."""
    if sequence.stale(DOCUMENT, current, update):
        assert current is not None
        return current
    dialogs = (
        {}
        if current is None or update.state is DocumentState.FULL
        else {d.id: d for d in current.dialogs}
    )
    dialogs.update((d.id, d) for d in update.dialogs)
    live = tuple(d for d in dialogs.values() if d.state is not DialogState.TERMINATED)
    return DialogInfo(
        version=update.version, state=DocumentState.FULL, entity=update.entity, dialogs=live
    )
