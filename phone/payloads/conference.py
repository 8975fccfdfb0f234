"""Conference state (RFC 4575): who is in a conference room, and with which media.

A focus (SylkServer, for one) NOTIFYs conference-info documents. Users are
keyed by `entity`, their endpoints by `entity` and endpoint media by `id`;
each user and endpoint carries a state: `full` replaces, `partial` updates
what it names, `deleted` removes (RFC 4575 partial notifications). `merge` applies those
rules; `ConferenceRoster` keeps the merged view of one subscription.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from lxml import etree

from phone.payloads import sequence, xml
from phone.payloads.sequence import DocumentState

log = logging.getLogger(__name__)

CONFERENCE_NS = "urn:ietf:params:xml:ns:conference-info"
CONTENT_TYPE = "application/conference-info+xml"
DOCUMENT = "conference-info"

_T = TypeVar("_T")


class ElementState(StrEnum):
    """How an element of a notification relates to the previous state (RFC 4575 `state` attribute)."""

    FULL = "full"
    PARTIAL = "partial"
    DELETED = "deleted"


class EndpointStatus(StrEnum):
    """The `<status>` of an endpoint (RFC 4575)."""

    PENDING = "pending"
    DIALING_OUT = "dialing-out"
    DIALING_IN = "dialing-in"
    ALERTING = "alerting"
    ON_HOLD = "on-hold"
    CONNECTED = "connected"
    MUTED_VIA_FOCUS = "muted-via-focus"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


class JoiningMethod(StrEnum):
    """How an endpoint came in: `<joining-method>` (RFC 4575)."""

    DIALED_IN = "dialed-in"
    DIALED_OUT = "dialed-out"
    FOCUS_OWNER = "focus-owner"


class DisconnectionMethod(StrEnum):
    """How an endpoint left: `<disconnection-method>` (RFC 4575)."""

    DEPARTED = "departed"
    BOOTED = "booted"
    FAILED = "failed"
    BUSY = "busy"


class MediaStatus(StrEnum):
    """The direction of one medium as the focus sees it (RFC 4575 `<media>/<status>`)."""

    RECVONLY = "recvonly"
    SENDONLY = "sendonly"
    SENDRECV = "sendrecv"
    INACTIVE = "inactive"


@dataclass(frozen=True)
class Execution:
    """When, why and by whom an endpoint joined or left (RFC 4575 `<joining-info>`, `<disconnection-info>`)."""

    when: datetime | None = None
    reason: str | None = None
    by: str | None = None


@dataclass(frozen=True)
class ConferenceUri:
    """A URI to join the conference, with its purpose (RFC 4575 `<conf-uris>`)."""

    uri: str
    display_text: str | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class Description:
    """The conference-description element (RFC 4575); None fields were absent."""

    display_text: str | None = None
    subject: str | None = None
    free_text: str | None = None
    conf_uris: tuple[ConferenceUri, ...] | None = None


@dataclass(frozen=True)
class ConferenceState:
    """The conference-state element (RFC 4575); None fields were absent."""

    user_count: int | None = None
    active: bool | None = None
    locked: bool | None = None


@dataclass(frozen=True)
class Media:
    """One medium of an endpoint (RFC 4575): `type` is audio, video, message..."""

    id: str
    type: str | None = None
    display_text: str | None = None
    label: str | None = None
    src_id: str | None = None
    status: MediaStatus | None = None


@dataclass(frozen=True)
class Endpoint:
    """One device of a user in the conference (RFC 4575)."""

    entity: str
    state: ElementState = ElementState.FULL
    display_text: str | None = None
    status: EndpointStatus | None = None
    joining_method: JoiningMethod | None = None
    joining_info: Execution | None = None
    disconnection_method: DisconnectionMethod | None = None
    disconnection_info: Execution | None = None
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class User:
    """One participant (RFC 4575): an AOR with its endpoints."""

    entity: str
    state: ElementState = ElementState.FULL
    display_text: str | None = None
    roles: tuple[str, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def connected(self) -> bool:
        """Whether any endpoint is in the conference right now (on hold counts)."""
        present = (EndpointStatus.CONNECTED, EndpointStatus.ON_HOLD, EndpointStatus.MUTED_VIA_FOCUS)
        return any(e.status in present for e in self.endpoints)


@dataclass(frozen=True)
class ConferenceInfo:
    entity: str
    version: int
    state: DocumentState
    description: Description | None = None
    conference_state: ConferenceState | None = None
    users: tuple[User, ...] = ()


def _child_text(element: xml.Element, name: str) -> str | None:
    return xml.text(xml.child(element, CONFERENCE_NS, name))


def _enum_child(element: xml.Element, name: str, kind: type[xml.E]) -> xml.E | None:
    raw = _child_text(element, name)
    return None if raw is None else xml.enum_value(kind, raw, DOCUMENT, f"<{name}>")


def _element_state(element: xml.Element) -> ElementState:
    return xml.enum_value(ElementState, element.get("state", "full"), DOCUMENT, "state attribute")


def _read_execution(element: xml.Element | None) -> Execution | None:
    if element is None:
        return None
    return Execution(
        when=xml.datetime_value(_child_text(element, "when"), DOCUMENT, "<when>"),
        reason=_child_text(element, "reason"),
        by=_child_text(element, "by"),
    )


def _read_description(element: xml.Element | None) -> Description | None:
    if element is None:
        return None
    uris = xml.child(element, CONFERENCE_NS, "conf-uris")
    return Description(
        display_text=_child_text(element, "display-text"),
        subject=_child_text(element, "subject"),
        free_text=_child_text(element, "free-text"),
        conf_uris=None
        if uris is None
        else tuple(
            ConferenceUri(
                uri=_child_text(entry, "uri") or "",
                display_text=_child_text(entry, "display-text"),
                purpose=_child_text(entry, "purpose"),
            )
            for entry in xml.children(uris, CONFERENCE_NS, "entry")
        ),
    )


def _read_conference_state(element: xml.Element | None) -> ConferenceState | None:
    if element is None:
        return None
    count, active, locked = (_child_text(element, n) for n in ("user-count", "active", "locked"))
    return ConferenceState(
        user_count=xml.optional_int(count, DOCUMENT, "<user-count>"),
        active=None if active is None else xml.bool_value(active, DOCUMENT, "<active>"),
        locked=None if locked is None else xml.bool_value(locked, DOCUMENT, "<locked>"),
    )


def _read_media(element: xml.Element) -> Media:
    return Media(
        id=xml.required_attr(element, "id", DOCUMENT),
        type=_child_text(element, "type"),
        display_text=_child_text(element, "display-text"),
        label=_child_text(element, "label"),
        src_id=_child_text(element, "src-id"),
        status=_enum_child(element, "status", MediaStatus),
    )


def _read_endpoint(element: xml.Element) -> Endpoint:
    return Endpoint(
        entity=xml.required_attr(element, "entity", DOCUMENT),
        state=_element_state(element),
        display_text=_child_text(element, "display-text"),
        status=_enum_child(element, "status", EndpointStatus),
        joining_method=_enum_child(element, "joining-method", JoiningMethod),
        joining_info=_read_execution(xml.child(element, CONFERENCE_NS, "joining-info")),
        disconnection_method=_enum_child(element, "disconnection-method", DisconnectionMethod),
        disconnection_info=_read_execution(xml.child(element, CONFERENCE_NS, "disconnection-info")),
        media=tuple(_read_media(e) for e in xml.children(element, CONFERENCE_NS, "media")),
    )


def _read_user(element: xml.Element) -> User:
    roles = xml.child(element, CONFERENCE_NS, "roles")
    return User(
        entity=xml.required_attr(element, "entity", DOCUMENT),
        state=_element_state(element),
        display_text=_child_text(element, "display-text"),
        roles=()
        if roles is None
        else tuple(xml.text(e) or "" for e in xml.children(roles, CONFERENCE_NS, "entry")),
        endpoints=tuple(
            _read_endpoint(e) for e in xml.children(element, CONFERENCE_NS, "endpoint")
        ),
    )


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> ConferenceInfo:
    """Parse an application/conference-info+xml body."""
    root = xml.parse(
        data, document=DOCUMENT, namespace=CONFERENCE_NS, root="conference-info", limit=limit
    )
    users = xml.child(root, CONFERENCE_NS, "users")
    return ConferenceInfo(
        entity=xml.required_attr(root, "entity", DOCUMENT),
        version=xml.int_value(xml.required_attr(root, "version", DOCUMENT), DOCUMENT, "version"),
        state=xml.enum_value(DocumentState, root.get("state", "full"), DOCUMENT, "state"),
        description=_read_description(xml.child(root, CONFERENCE_NS, "conference-description")),
        conference_state=_read_conference_state(xml.child(root, CONFERENCE_NS, "conference-state")),
        users=()
        if users is None
        else tuple(_read_user(e) for e in xml.children(users, CONFERENCE_NS, "user")),
    )


def _text_children(parent: xml.Element, pairs: tuple[tuple[str, str | None], ...]) -> None:
    for name, value in pairs:
        if value is not None:
            xml.sub(parent, CONFERENCE_NS, name, value)


def _write_execution(parent: xml.Element, name: str, execution: Execution | None) -> None:
    if execution is None:
        return
    element = xml.sub(parent, CONFERENCE_NS, name)
    when = None if execution.when is None else xml.format_datetime(execution.when)
    _text_children(element, (("when", when), ("reason", execution.reason), ("by", execution.by)))


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def _write_endpoint(parent: xml.Element, endpoint: Endpoint) -> None:
    element = xml.sub(parent, CONFERENCE_NS, "endpoint")
    element.set("entity", endpoint.entity)
    element.set("state", endpoint.state.value)
    _text_children(
        element,
        (("display-text", endpoint.display_text), ("status", _value(endpoint.status))),
    )
    _text_children(element, (("joining-method", _value(endpoint.joining_method)),))
    _write_execution(element, "joining-info", endpoint.joining_info)
    _text_children(element, (("disconnection-method", _value(endpoint.disconnection_method)),))
    _write_execution(element, "disconnection-info", endpoint.disconnection_info)
    for media in endpoint.media:
        item = xml.sub(element, CONFERENCE_NS, "media")
        item.set("id", media.id)
        _text_children(
            item,
            (
                ("display-text", media.display_text),
                ("type", media.type),
                ("label", media.label),
                ("src-id", media.src_id),
                ("status", _value(media.status)),
            ),
        )


def build(info: ConferenceInfo) -> bytes:
    """The application/conference-info+xml body for `info`."""
    root = etree.Element(xml.qname(CONFERENCE_NS, "conference-info"), nsmap={None: CONFERENCE_NS})
    root.set("entity", info.entity)
    root.set("state", info.state.value)
    root.set("version", str(info.version))
    if info.description is not None:
        description = xml.sub(root, CONFERENCE_NS, "conference-description")
        _text_children(
            description,
            (
                ("display-text", info.description.display_text),
                ("subject", info.description.subject),
                ("free-text", info.description.free_text),
            ),
        )
        if info.description.conf_uris is not None:
            uris = xml.sub(description, CONFERENCE_NS, "conf-uris")
            for uri in info.description.conf_uris:
                entry = xml.sub(uris, CONFERENCE_NS, "entry")
                _text_children(
                    entry,
                    (
                        ("uri", uri.uri),
                        ("display-text", uri.display_text),
                        ("purpose", uri.purpose),
                    ),
                )
    if info.conference_state is not None:
        state = xml.sub(root, CONFERENCE_NS, "conference-state")
        cs = info.conference_state
        _text_children(
            state,
            (
                ("user-count", None if cs.user_count is None else str(cs.user_count)),
                ("active", None if cs.active is None else str(cs.active).lower()),
                ("locked", None if cs.locked is None else str(cs.locked).lower()),
            ),
        )
    if info.users or info.state is DocumentState.FULL:
        users = xml.sub(root, CONFERENCE_NS, "users")
        for user in info.users:
            element = xml.sub(users, CONFERENCE_NS, "user")
            element.set("entity", user.entity)
            element.set("state", user.state.value)
            _text_children(element, (("display-text", user.display_text),))
            if user.roles:
                roles = xml.sub(element, CONFERENCE_NS, "roles")
                for role in user.roles:
                    xml.sub(roles, CONFERENCE_NS, "entry", role)
            for endpoint in user.endpoints:
                _write_endpoint(element, endpoint)
    return xml.serialise(root)


def _overlay(old: _T, new: _T, fields: tuple[str, ...]) -> _T:
    """`old` with the `fields` that `new` states (not None): a partial update."""
    present = {f: getattr(new, f) for f in fields if getattr(new, f) is not None}
    return replace(old, **present)  # type: ignore[type-var]


def _merge_media(old: tuple[Media, ...], new: tuple[Media, ...]) -> tuple[Media, ...]:
    media = {m.id: m for m in old}
    media.update((m.id, m) for m in new)
    return tuple(media.values())


_ENDPOINT_FIELDS = (
    "display_text",
    "status",
    "joining_method",
    "joining_info",
    "disconnection_method",
    "disconnection_info",
)


def _merge_endpoints(old: tuple[Endpoint, ...], new: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    endpoints = {e.entity: e for e in old}
    for endpoint in new:
        previous = endpoints.get(endpoint.entity)
        if endpoint.state is ElementState.DELETED:
            endpoints.pop(endpoint.entity, None)
        elif endpoint.state is ElementState.FULL or previous is None:
            endpoints[endpoint.entity] = replace(endpoint, state=ElementState.FULL)
        else:
            endpoints[endpoint.entity] = replace(
                _overlay(previous, endpoint, _ENDPOINT_FIELDS),
                media=_merge_media(previous.media, endpoint.media),
            )
    return tuple(endpoints.values())


def _merge_users(old: tuple[User, ...], new: tuple[User, ...]) -> tuple[User, ...]:
    users = {u.entity: u for u in old}
    for user in new:
        previous = users.get(user.entity)
        if user.state is ElementState.DELETED:
            users.pop(user.entity, None)
        elif user.state is ElementState.FULL or previous is None:
            users[user.entity] = replace(
                user,
                state=ElementState.FULL,
                endpoints=_merge_endpoints((), user.endpoints),
            )
        else:
            users[user.entity] = replace(
                previous,
                display_text=user.display_text or previous.display_text,
                roles=user.roles or previous.roles,
                endpoints=_merge_endpoints(previous.endpoints, user.endpoints),
            )
    return tuple(users.values())


def merge(current: ConferenceInfo | None, update: ConferenceInfo) -> ConferenceInfo:
    """The state after `update` (RFC 4575): stale ones leave `current` as is,
    a partial one after a gap raises `VersionGap`."""
    if sequence.stale(DOCUMENT, current, update):
        assert current is not None
        return current
    full = update.state is DocumentState.FULL
    if current is None or full:
        return replace(update, users=_merge_users((), update.users))
    description = current.description
    if update.description is not None:
        description = _overlay(
            description or Description(),
            update.description,
            ("display_text", "subject", "free_text", "conf_uris"),
        )
    conference_state = current.conference_state
    if update.conference_state is not None:
        conference_state = _overlay(
            conference_state or ConferenceState(),
            update.conference_state,
            ("user_count", "active", "locked"),
        )
    return ConferenceInfo(
        entity=update.entity,
        version=update.version,
        state=DocumentState.FULL,
        description=description,
        conference_state=conference_state,
        users=_merge_users(current.users, update.users),
    )


class ConferenceRoster:
    """The merged conference state of one subscription, for the conference screen.

    After a `VersionGap` from `apply`, re-SUBSCRIBE and start a new roster.
    """

    def __init__(self) -> None:
        self.info: ConferenceInfo | None = None

    def apply(self, update: ConferenceInfo) -> bool:
        """Fold a NOTIFY in; False if it was stale and ignored."""
        merged = merge(self.info, update)
        if merged is self.info:
            log.info("ignoring stale conference-info version %d", update.version)
            return False
        self.info = merged
        return True

    @property
    def participants(self) -> tuple[User, ...]:
        """The users with an endpoint in the conference now."""
        return () if self.info is None else tuple(u for u in self.info.users if u.connected)

    @property
    def subject(self) -> str | None:
        description = None if self.info is None else self.info.description
        return None if description is None else description.subject or description.display_text
