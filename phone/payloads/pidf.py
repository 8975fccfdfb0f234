"""PIDF (RFC 3863) with the RFC 4479 data model: what a presentity publishes.

A document has one presence entity and any number of tuples (services: basic
open/closed status, contact, notes), persons and devices
(`urn:ietf:params:xml:ns:pidf:data-model`). RPID/CIPID data inside persons,
tuples and devices is read by `rpid` into a typed `RichPresence`.
`build_user_presence` makes the documents the phone PUBLISHes in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from lxml import etree

from phone.payloads import rpid, xml
from phone.payloads.error import PayloadError
from phone.payloads.rpid import Activities, Activity, RichPresence

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
DATA_MODEL_NS = "urn:ietf:params:xml:ns:pidf:data-model"
CONTENT_TYPE = "application/pidf+xml"

DOCUMENT = "PIDF"

NAMESPACES = {
    None: PIDF_NS,
    "dm": DATA_MODEL_NS,
    "rpid": rpid.RPID_NS,
    "c": rpid.CIPID_NS,
}


class BasicStatus(StrEnum):
    """RFC 3863 §4.1.4: can the service be reached right now?"""

    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Note:
    """A human-readable note with its language (RFC 3863 §4.1.6, xml:lang)."""

    text: str
    lang: str | None = None


@dataclass(frozen=True)
class Contact:
    """Where to reach the service; `priority` is a qvalue 0..1 (RFC 3863 §4.1.5)."""

    uri: str
    priority: float | None = None


@dataclass(frozen=True)
class PresenceTuple:
    """One service of the presentity (RFC 3863 §4.1.2; a service in RFC 4479)."""

    id: str
    basic: BasicStatus | None = None
    contact: Contact | None = None
    notes: tuple[Note, ...] = ()
    timestamp: datetime | None = None
    device_id: str | None = None
    rich: RichPresence = field(default_factory=RichPresence)


@dataclass(frozen=True)
class Person:
    """The human behind the presentity (RFC 4479 `<person>`), carrying most RPID data."""

    id: str
    rich: RichPresence = field(default_factory=RichPresence)
    notes: tuple[Note, ...] = ()
    timestamp: datetime | None = None


@dataclass(frozen=True)
class Device:
    """A physical device the services run on (RFC 4479 `<device>`)."""

    id: str
    device_id: str
    rich: RichPresence = field(default_factory=RichPresence)
    notes: tuple[Note, ...] = ()
    timestamp: datetime | None = None


@dataclass(frozen=True)
class Presence:
    """A whole PIDF document (RFC 3863 §4.1.1)."""

    entity: str
    tuples: tuple[PresenceTuple, ...] = ()
    persons: tuple[Person, ...] = ()
    devices: tuple[Device, ...] = ()
    notes: tuple[Note, ...] = ()

    @property
    def basic(self) -> BasicStatus | None:
        """Open if any tuple is open, closed if all stated ones are, None if none says."""
        stated = [t.basic for t in self.tuples if t.basic is not None]
        if not stated:
            return None
        return BasicStatus.OPEN if BasicStatus.OPEN in stated else BasicStatus.CLOSED

    @property
    def activities(self) -> tuple[Activity, ...]:
        """All activities stated by the persons, in document order, without repeats."""
        seen: dict[Activity, None] = {}
        for person in self.persons:
            if person.rich.activities is not None:
                seen.update(dict.fromkeys(person.rich.activities.values))
        return tuple(seen)

    def note(self, lang: str | None = None) -> str | None:
        """The note to show for this presentity: a person's, else a tuple's, else the
        document's; in `lang` when one is written in it (RFC 3863 §4.1.6)."""
        for notes in (
            tuple(n for p in self.persons for n in p.notes),
            tuple(n for t in self.tuples for n in t.notes),
            self.notes,
        ):
            if notes:
                chosen = next((n for n in notes if lang is not None and n.lang == lang), notes[0])
                return chosen.text
        return None


_UNDERSTOOD = frozenset({PIDF_NS, DATA_MODEL_NS, rpid.RPID_NS, rpid.CIPID_NS})
_MUST_UNDERSTAND = xml.qname(PIDF_NS, "mustUnderstand")


def _refuse_not_understood(element: xml.Element) -> None:
    """RFC 3863 `mustUnderstand`: an extension marked so that we do not know
    makes the whole document unusable."""
    for item in element.iter(etree.Element):
        if (
            item.get(_MUST_UNDERSTAND) in ("true", "1")
            and xml.namespace_of(item) not in _UNDERSTOOD
        ):
            raise PayloadError(DOCUMENT, f"{item.tag} must be understood and is not")


def _notes(element: xml.Element, namespace: str) -> tuple[Note, ...]:
    return tuple(
        Note(text=xml.text(note) or "", lang=xml.lang_of(note))
        for note in xml.children(element, namespace, "note")
    )


def _priority(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise PayloadError(DOCUMENT, f"contact priority is not a number: {raw!r}") from None
    if not value.is_finite() or not 0 <= value <= 1:
        raise PayloadError(DOCUMENT, f"contact priority {raw!r} is outside 0..1")
    return float(value)


def _timestamp(element: xml.Element, namespace: str) -> datetime | None:
    return xml.datetime_value(
        xml.text(xml.child(element, namespace, "timestamp")), DOCUMENT, "<timestamp>"
    )


def _read_tuple(element: xml.Element) -> PresenceTuple:
    status = xml.child(element, PIDF_NS, "status")
    if status is None:
        raise PayloadError(DOCUMENT, "<tuple> lacks its <status>")
    basic = xml.child(status, PIDF_NS, "basic")
    contact = xml.child(element, PIDF_NS, "contact")
    return PresenceTuple(
        id=xml.required_attr(element, "id", DOCUMENT),
        basic=None
        if basic is None
        else xml.enum_value(BasicStatus, xml.text(basic), DOCUMENT, "<basic>"),
        contact=None
        if contact is None
        else Contact(uri=xml.text(contact) or "", priority=_priority(contact.get("priority"))),
        notes=_notes(element, PIDF_NS),
        timestamp=_timestamp(element, PIDF_NS),
        device_id=xml.text(xml.child(element, DATA_MODEL_NS, "deviceID")),
        rich=rpid.read(element, extra=status),
    )


def _read_person(element: xml.Element) -> Person:
    return Person(
        id=xml.required_attr(element, "id", DOCUMENT),
        rich=rpid.read(element),
        notes=_notes(element, DATA_MODEL_NS),
        timestamp=_timestamp(element, DATA_MODEL_NS),
    )


def _read_device(element: xml.Element) -> Device:
    device_id = xml.text(xml.child(element, DATA_MODEL_NS, "deviceID"))
    if not device_id:
        raise PayloadError(DOCUMENT, "<dm:device> lacks its <dm:deviceID>")
    return Device(
        id=xml.required_attr(element, "id", DOCUMENT),
        device_id=device_id,
        rich=rpid.read(element),
        notes=_notes(element, DATA_MODEL_NS),
        timestamp=_timestamp(element, DATA_MODEL_NS),
    )


def read(element: xml.Element) -> Presence:
    """A `<presence>` element already parsed (as an RLS NOTIFY part is)."""
    _refuse_not_understood(element)
    return Presence(
        entity=xml.required_attr(element, "entity", DOCUMENT),
        tuples=tuple(_read_tuple(e) for e in xml.children(element, PIDF_NS, "tuple")),
        persons=tuple(_read_person(e) for e in xml.children(element, DATA_MODEL_NS, "person")),
        devices=tuple(_read_device(e) for e in xml.children(element, DATA_MODEL_NS, "device")),
        notes=_notes(element, PIDF_NS),
    )


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> Presence:
    """Parse an application/pidf+xml body."""
    root = xml.parse(data, document=DOCUMENT, namespace=PIDF_NS, root="presence", limit=limit)
    return read(root)


def _write_notes(parent: xml.Element, namespace: str, notes: tuple[Note, ...]) -> None:
    for note in notes:
        element = xml.sub(parent, namespace, "note", note.text)
        if note.lang is not None:
            element.set(xml.LANG, note.lang)


def build(presence: Presence) -> bytes:
    """The application/pidf+xml body for `presence`."""
    root = etree.Element(xml.qname(PIDF_NS, "presence"), nsmap=NAMESPACES)
    root.set("entity", presence.entity)
    for item in presence.tuples:
        element = xml.sub(root, PIDF_NS, "tuple")
        element.set("id", item.id)
        status = xml.sub(element, PIDF_NS, "status")
        if item.basic is not None:
            xml.sub(status, PIDF_NS, "basic", item.basic.value)
        rpid.write(element, item.rich)
        if item.device_id is not None:
            xml.sub(element, DATA_MODEL_NS, "deviceID", item.device_id)
        if item.contact is not None:
            contact = xml.sub(element, PIDF_NS, "contact", item.contact.uri)
            if item.contact.priority is not None:
                contact.set("priority", format(Decimal(repr(item.contact.priority)), "f"))
        _write_notes(element, PIDF_NS, item.notes)
        if item.timestamp is not None:
            xml.sub(element, PIDF_NS, "timestamp", xml.format_datetime(item.timestamp))
    _write_notes(root, PIDF_NS, presence.notes)
    for person in presence.persons:
        element = xml.sub(root, DATA_MODEL_NS, "person")
        element.set("id", person.id)
        rpid.write(element, person.rich)
        _write_notes(element, DATA_MODEL_NS, person.notes)
        if person.timestamp is not None:
            xml.sub(element, DATA_MODEL_NS, "timestamp", xml.format_datetime(person.timestamp))
    for device in presence.devices:
        element = xml.sub(root, DATA_MODEL_NS, "device")
        element.set("id", device.id)
        rpid.write(element, device.rich)
        xml.sub(element, DATA_MODEL_NS, "deviceID", device.device_id)
        _write_notes(element, DATA_MODEL_NS, device.notes)
        if device.timestamp is not None:
            xml.sub(element, DATA_MODEL_NS, "timestamp", xml.format_datetime(device.timestamp))
    return xml.serialise(root)


def user_presence(
    entity: str,
    basic: BasicStatus,
    *,
    activities: tuple[Activity, ...] = (),
    note: str | None = None,
    contact: str | None = None,
    display_name: str | None = None,
    timestamp: datetime | None = None,
    tuple_id: str = "sip",
    person_id: str = "user",
) -> Presence:
    """The document a phone publishes for its user: one SIP tuple and one person.

    The note goes both in the tuple (read by simple watchers) and in the person
    (RFC 4479). Ids are stable so a later PUBLISH replaces, not adds.
    """
    notes = () if note is None else (Note(note),)
    rich = RichPresence(
        activities=Activities(values=activities) if activities else None,
        display_name=display_name,
    )
    return Presence(
        entity=entity,
        tuples=(
            PresenceTuple(
                id=tuple_id,
                basic=basic,
                contact=None if contact is None else Contact(contact),
                notes=notes,
                timestamp=timestamp,
            ),
        ),
        persons=(Person(id=person_id, rich=rich, notes=notes, timestamp=timestamp),),
    )


def build_user_presence(
    entity: str,
    basic: BasicStatus,
    *,
    activities: tuple[Activity, ...] = (),
    note: str | None = None,
    contact: str | None = None,
    display_name: str | None = None,
    timestamp: datetime | None = None,
) -> bytes:
    """One call from "busy, Do not disturb" to the PUBLISH body (see `user_presence`)."""
    return build(
        user_presence(
            entity,
            basic,
            activities=activities,
            note=note,
            contact=contact,
            display_name=display_name,
            timestamp=timestamp,
        )
    )
