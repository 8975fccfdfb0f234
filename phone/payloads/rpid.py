"""RPID (RFC 4480) and CIPID (RFC 4482): the rich presence inside PIDF elements.

RPID elements live in a PIDF `<dm:person>` (activities, mood, place type,
privacy, sphere, user input), in a `<tuple>` (user input) or in
a `<dm:device>`. `pidf` calls `read` on each of those elements and `write` when
building; this module knows nothing else of PIDF. CIPID's display-name and icon
(RFC 4482) ride along because contact buttons want a name and a picture.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from phone.payloads import xml
from phone.payloads.error import PayloadError

RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"
CIPID_NS = "urn:ietf:params:xml:ns:pidf:cipid"
LOCATION_TYPE_NS = "urn:ietf:params:xml:ns:location-type"

DOCUMENT = "PIDF (RPID)"


class Activity(StrEnum):
    """RFC 4480 activities; `unknown` stands alone, `other` carries free text."""

    APPOINTMENT = "appointment"
    AWAY = "away"
    BREAKFAST = "breakfast"
    BUSY = "busy"
    DINNER = "dinner"
    HOLIDAY = "holiday"
    IN_TRANSIT = "in-transit"
    LOOKING_FOR_WORK = "looking-for-work"
    LUNCH = "lunch"
    MEAL = "meal"
    MEETING = "meeting"
    ON_THE_PHONE = "on-the-phone"
    PERFORMANCE = "performance"
    PERMANENT_ABSENCE = "permanent-absence"
    PLAYING = "playing"
    PRESENTATION = "presentation"
    SHOPPING = "shopping"
    SLEEPING = "sleeping"
    SPECTATOR = "spectator"
    STEERING = "steering"
    TRAVEL = "travel"
    TV = "tv"
    VACATION = "vacation"
    WORKING = "working"
    WORSHIP = "worship"
    UNKNOWN = "unknown"


class Mood(StrEnum):
    """RFC 4480 moods (the schema spells two of them with underscores)."""

    AFRAID = "afraid"
    AMAZED = "amazed"
    ANGRY = "angry"
    ANNOYED = "annoyed"
    ANXIOUS = "anxious"
    ASHAMED = "ashamed"
    BORED = "bored"
    BRAVE = "brave"
    CALM = "calm"
    COLD = "cold"
    CONFUSED = "confused"
    CONTENTED = "contented"
    CRANKY = "cranky"
    CURIOUS = "curious"
    DEPRESSED = "depressed"
    DISAPPOINTED = "disappointed"
    DISGUSTED = "disgusted"
    DISTRACTED = "distracted"
    EMBARRASSED = "embarrassed"
    EXCITED = "excited"
    FLIRTATIOUS = "flirtatious"
    FRUSTRATED = "frustrated"
    GRUMPY = "grumpy"
    GUILTY = "guilty"
    HAPPY = "happy"
    HOT = "hot"
    HUMBLED = "humbled"
    HUMILIATED = "humiliated"
    HUNGRY = "hungry"
    HURT = "hurt"
    IMPRESSED = "impressed"
    IN_AWE = "in_awe"
    IN_LOVE = "in_love"
    INDIGNANT = "indignant"
    INTERESTED = "interested"
    INVINCIBLE = "invincible"
    JEALOUS = "jealous"
    LONELY = "lonely"
    MEAN = "mean"
    MOODY = "moody"
    NERVOUS = "nervous"
    NEUTRAL = "neutral"
    OFFENDED = "offended"
    PLAYFUL = "playful"
    PROUD = "proud"
    RELIEVED = "relieved"
    REMORSEFUL = "remorseful"
    RESTLESS = "restless"
    SAD = "sad"
    SARCASTIC = "sarcastic"
    SERIOUS = "serious"
    SHOCKED = "shocked"
    SHY = "shy"
    SICK = "sick"
    SLEEPY = "sleepy"
    STRESSED = "stressed"
    SURPRISED = "surprised"
    THIRSTY = "thirsty"
    WORRIED = "worried"
    UNKNOWN = "unknown"


class Privacy(StrEnum):
    """RFC 4480 privacy: which media are private (others cannot listen in / read)."""

    AUDIO = "audio"
    TEXT = "text"
    VIDEO = "video"
    UNKNOWN = "unknown"


class UserInputState(StrEnum):
    """The `<user-input>` value of RFC 4480."""

    ACTIVE = "active"
    IDLE = "idle"


@dataclass(frozen=True)
class Activities:
    """What the person is doing (RFC 4480); `other` is free text."""

    values: tuple[Activity, ...] = ()
    other: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class MoodState:
    """How the person feels (RFC 4480)."""

    values: tuple[Mood, ...] = ()
    other: str | None = None


@dataclass(frozen=True)
class PlaceType:
    """Where the person is, as RFC 4589 location types (`home`, `office`, ...)."""

    values: tuple[str, ...] = ()
    other: str | None = None


@dataclass(frozen=True)
class UserInput:
    """Whether someone touched the device lately (RFC 4480); threshold in seconds."""

    state: UserInputState
    idle_threshold: int | None = None
    last_input: datetime | None = None


@dataclass(frozen=True)
class RichPresence:
    """The RPID and CIPID data found in one PIDF person, tuple or device.

    `sphere` is `work`, `home`, `unknown` or the free text of RFC 4480.
    """

    activities: Activities | None = None
    mood: MoodState | None = None
    place_type: PlaceType | None = None
    privacy: frozenset[Privacy] | None = None
    sphere: str | None = None
    user_input: UserInput | None = None
    display_name: str | None = None
    icon: str | None = None


_SPHERE_WORDS = ("work", "home", "unknown")


def _rpid_children(element: xml.Element) -> list[xml.Element]:
    return [c for c in xml.children(element) if xml.namespace_of(c) == RPID_NS]


def _read_values(
    element: xml.Element, kind: type[xml.E], what: str
) -> tuple[list[xml.E], str | None]:
    """The enum entries of an RPID list element (activities, mood) and its `<other>` text."""
    values: list[xml.E] = []
    other = None
    for item in _rpid_children(element):
        name = xml.local_name(item)
        if name == "other":
            other = xml.text(item)
        elif name != "note":
            values.append(xml.enum_value(kind, name, DOCUMENT, what))
    return values, other


def _read_activities(element: xml.Element) -> Activities:
    values, other = _read_values(element, Activity, "<rpid:activities> entry")
    if Activity.UNKNOWN in values and len(values) > 1:
        raise PayloadError(DOCUMENT, "<rpid:activities> mixes 'unknown' with other activities")
    return Activities(
        values=tuple(values),
        other=other,
        since=xml.datetime_value(element.get("from"), DOCUMENT, "activities 'from'"),
        until=xml.datetime_value(element.get("until"), DOCUMENT, "activities 'until'"),
    )


def _read_mood(element: xml.Element) -> MoodState:
    values, other = _read_values(element, Mood, "<rpid:mood> entry")
    return MoodState(values=tuple(values), other=other)


def _read_place_type(element: xml.Element) -> PlaceType:
    values: list[str] = []
    other = None
    for item in xml.children(element):
        ns, name = xml.namespace_of(item), xml.local_name(item)
        if ns == RPID_NS and name == "other":
            other = xml.text(item)
        elif ns == LOCATION_TYPE_NS:
            values.append(name)
    return PlaceType(values=tuple(values), other=other)


def _read_privacy(element: xml.Element) -> frozenset[Privacy]:
    return frozenset(
        xml.enum_value(Privacy, xml.local_name(item), DOCUMENT, "<rpid:privacy> entry")
        for item in _rpid_children(element)
        if xml.local_name(item) != "note"
    )


def _read_sphere(element: xml.Element) -> str:
    words = [xml.local_name(item) for item in _rpid_children(element)]
    for word in words:
        if word not in _SPHERE_WORDS:
            raise PayloadError(DOCUMENT, f"<rpid:sphere> has unknown value {word!r}")
    return words[0] if words else (xml.text(element) or "")


def _read_user_input(element: xml.Element) -> UserInput:
    return UserInput(
        state=xml.enum_value(UserInputState, xml.text(element), DOCUMENT, "<rpid:user-input>"),
        idle_threshold=xml.optional_int(
            element.get("idle-threshold"), DOCUMENT, "user-input 'idle-threshold'"
        ),
        last_input=xml.datetime_value(
            element.get("last-input"), DOCUMENT, "user-input 'last-input'"
        ),
    )


def read(element: xml.Element, *, extra: xml.Element | None = None) -> RichPresence:
    """The RPID/CIPID children of a PIDF person, tuple or device (and of `extra`,
    a tuple's `<status>`, where older clients put them)."""
    found = RichPresence()
    containers = [element] if extra is None else [element, extra]
    for container in containers:
        for item in xml.children(container):
            ns, name = xml.namespace_of(item), xml.local_name(item)
            if ns == CIPID_NS and name == "display-name":
                found = replace(found, display_name=xml.text(item))
            elif ns == CIPID_NS and name == "icon":
                found = replace(found, icon=xml.text(item))
            elif ns != RPID_NS:
                continue
            elif name == "activities":
                found = replace(found, activities=_read_activities(item))
            elif name == "mood":
                found = replace(found, mood=_read_mood(item))
            elif name == "place-type":
                found = replace(found, place_type=_read_place_type(item))
            elif name == "privacy":
                found = replace(found, privacy=_read_privacy(item))
            elif name == "sphere":
                found = replace(found, sphere=_read_sphere(item))
            elif name == "user-input":
                found = replace(found, user_input=_read_user_input(item))
    return found


def _write_choice(
    parent: xml.Element, name: str, values: tuple[str, ...], other: str | None
) -> xml.Element:
    element = xml.sub(parent, RPID_NS, name)
    for value in values:
        xml.sub(element, RPID_NS, value)
    if other is not None:
        xml.sub(element, RPID_NS, "other", other)
    return element


def write(parent: xml.Element, data: RichPresence) -> None:
    """Append `data` to a PIDF person, tuple or device element being built."""
    if data.activities is not None:
        activities = _write_choice(
            parent, "activities", tuple(data.activities.values), data.activities.other
        )
        if data.activities.since is not None:
            activities.set("from", xml.format_datetime(data.activities.since))
        if data.activities.until is not None:
            activities.set("until", xml.format_datetime(data.activities.until))
    if data.mood is not None:
        _write_choice(parent, "mood", tuple(data.mood.values), data.mood.other)
    if data.place_type is not None:
        place = xml.sub(parent, RPID_NS, "place-type")
        for value in data.place_type.values:
            xml.sub(place, LOCATION_TYPE_NS, value)
        if data.place_type.other is not None:
            xml.sub(place, RPID_NS, "other", data.place_type.other)
    if data.privacy is not None:
        _write_choice(parent, "privacy", tuple(sorted(data.privacy)), None)
    if data.sphere is not None:
        sphere = xml.sub(parent, RPID_NS, "sphere")
        if data.sphere in _SPHERE_WORDS:
            xml.sub(sphere, RPID_NS, data.sphere)
        else:
            sphere.text = data.sphere
    if data.user_input is not None:
        user_input = xml.sub(parent, RPID_NS, "user-input", data.user_input.state.value)
        if data.user_input.idle_threshold is not None:
            user_input.set("idle-threshold", str(data.user_input.idle_threshold))
        if data.user_input.last_input is not None:
            user_input.set("last-input", xml.format_datetime(data.user_input.last_input))
    if data.display_name is not None:
        xml.sub(parent, CIPID_NS, "display-name", data.display_name)
    if data.icon is not None:
        xml.sub(parent, CIPID_NS, "icon", data.icon)
