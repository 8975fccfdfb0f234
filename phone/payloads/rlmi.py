"""RLMI (RFC 4662 §5) and the multipart/related body of an RLS NOTIFY (§4.3).

An RLS answers a list subscription with one NOTIFY whose body is
multipart/related: the root part is the RLMI document listing the resources and
their subscription instances; each active instance's `cid` names the part that
holds that resource's state (a PIDF document, or a nested multipart/related for
a resource that is itself a list). MIME is parsed by the stdlib `email`
package. `ListView` keeps the list across NOTIFYs: full state replaces, partial
state updates, and versions must follow one another (`sequence`).
"""

from __future__ import annotations

import email.utils
import logging
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.message import Message
from email.parser import BytesParser
from enum import StrEnum

from lxml import etree

from phone.payloads import pidf, sequence, xml
from phone.payloads.error import PayloadError

log = logging.getLogger(__name__)

RLMI_NS = "urn:ietf:params:xml:ns:rlmi"
CONTENT_TYPE = "application/rlmi+xml"
MULTIPART_TYPE = "multipart/related"

DOCUMENT = "RLMI"
NOTIFY = "RLS NOTIFY body"
MAX_NESTING = 8
"""Deepest list-in-a-list accepted; the RFC sets no bound, a hostile RLS might."""


class InstanceState(StrEnum):
    """The state of the back-end subscription to one resource (RFC 4662 §5)."""

    ACTIVE = "active"
    PENDING = "pending"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class Name:
    """A display name of a list or resource, with its language."""

    text: str
    lang: str | None = None


@dataclass(frozen=True)
class Instance:
    """One back-end subscription of a resource; `cid` names its body part (no `<>`)."""

    id: str
    state: InstanceState
    reason: str | None = None
    cid: str | None = None


@dataclass(frozen=True)
class Resource:
    uri: str
    names: tuple[Name, ...] = ()
    instances: tuple[Instance, ...] = ()


@dataclass(frozen=True)
class ResourceList:
    """An RLMI `<list>` document (RFC 4662 §5)."""

    uri: str
    version: int
    full_state: bool
    names: tuple[Name, ...] = ()
    resources: tuple[Resource, ...] = ()
    cid: str | None = None


@dataclass(frozen=True)
class BodyPart:
    """One part of the multipart body, found by its Content-ID.

    `presence` is set for a PIDF part; `nested` for a resource that is itself a
    list (a multipart/related part), whose `body` is then empty.
    """

    content_id: str
    content_type: str
    body: bytes
    presence: pidf.Presence | None = None
    nested: ListNotification | None = None


@dataclass(frozen=True)
class ListNotification:
    """A parsed RLS NOTIFY body: the RLMI list and the parts by Content-ID."""

    list: ResourceList
    parts: dict[str, BodyPart] = field(default_factory=dict)


def _names(element: xml.Element) -> tuple[Name, ...]:
    return tuple(
        Name(text=xml.text(name) or "", lang=xml.lang_of(name))
        for name in xml.children(element, RLMI_NS, "name")
    )


def _read_instance(element: xml.Element) -> Instance:
    return Instance(
        id=xml.required_attr(element, "id", DOCUMENT),
        state=xml.enum_value(
            InstanceState, xml.required_attr(element, "state", DOCUMENT), DOCUMENT, "instance state"
        ),
        reason=element.get("reason"),
        cid=None if element.get("cid") is None else _bare_cid(element.get("cid")),
    )


def _read_resource(element: xml.Element) -> Resource:
    return Resource(
        uri=xml.required_attr(element, "uri", DOCUMENT),
        names=_names(element),
        instances=tuple(_read_instance(e) for e in xml.children(element, RLMI_NS, "instance")),
    )


def read(element: xml.Element) -> ResourceList:
    """A `<list>` element already parsed."""
    return ResourceList(
        uri=xml.required_attr(element, "uri", DOCUMENT),
        version=xml.int_value(xml.required_attr(element, "version", DOCUMENT), DOCUMENT, "version"),
        full_state=xml.bool_value(
            xml.required_attr(element, "fullState", DOCUMENT), DOCUMENT, "fullState"
        ),
        names=_names(element),
        resources=tuple(_read_resource(e) for e in xml.children(element, RLMI_NS, "resource")),
        cid=None if element.get("cid") is None else _bare_cid(element.get("cid")),
    )


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> ResourceList:
    """Parse an application/rlmi+xml document on its own."""
    return read(xml.parse(data, document=DOCUMENT, namespace=RLMI_NS, root="list", limit=limit))


def _write_names(parent: xml.Element, names: tuple[Name, ...]) -> None:
    for name in names:
        element = xml.sub(parent, RLMI_NS, "name", name.text)
        if name.lang is not None:
            element.set(xml.LANG, name.lang)


def build(resource_list: ResourceList) -> bytes:
    """The application/rlmi+xml document for `resource_list`."""
    root = etree.Element(xml.qname(RLMI_NS, "list"), nsmap={None: RLMI_NS})
    root.set("uri", resource_list.uri)
    root.set("version", str(resource_list.version))
    root.set("fullState", "true" if resource_list.full_state else "false")
    if resource_list.cid is not None:
        root.set("cid", resource_list.cid)
    _write_names(root, resource_list.names)
    for resource in resource_list.resources:
        element = xml.sub(root, RLMI_NS, "resource")
        element.set("uri", resource.uri)
        _write_names(element, resource.names)
        for instance in resource.instances:
            item = xml.sub(element, RLMI_NS, "instance")
            item.set("id", instance.id)
            item.set("state", instance.state.value)
            if instance.reason is not None:
                item.set("reason", instance.reason)
            if instance.cid is not None:
                item.set("cid", instance.cid)
    return xml.serialise(root)


def _bare_cid(value: str) -> str:
    """A Content-ID without its angle brackets, as RLMI `cid` attributes carry it."""
    return value.strip().removeprefix("<").removesuffix(">").strip()


_FATAL_DEFECTS: dict[type[email_errors.MessageDefect], str] = {
    email_errors.NoBoundaryInMultipartDefect: "multipart without a boundary parameter",
    email_errors.StartBoundaryNotFoundDefect: "the boundary never appears in the body",
    email_errors.CloseBoundaryNotFoundDefect: "no closing boundary: truncated body",
    email_errors.MultipartInvariantViolationDefect: "multipart without body parts",
    email_errors.MissingHeaderBodySeparatorDefect: "part headers not ended by a blank line",
    email_errors.FirstHeaderLineIsContinuationDefect: "part headers start with a continuation",
    email_errors.MisplacedEnvelopeHeaderDefect: "envelope header inside a part",
}


def _check_defects(message: Message, where: str) -> None:
    for defect in message.defects:
        problem = _FATAL_DEFECTS.get(type(defect))
        if problem is not None:
            raise PayloadError(NOTIFY, f"{where}: {problem}")


def _param(message: Message, name: str) -> str | None:
    """A Content-Type parameter, RFC 2231 encoding undone."""
    value = message.get_param(name)
    return None if value is None else email.utils.collapse_rfc2231_value(value)


def _read_part(part: Message, depth: int) -> BodyPart:
    _check_defects(part, "body part")
    raw_cid = part.get("Content-ID")
    if raw_cid is None or not _bare_cid(str(raw_cid)):
        raise PayloadError(NOTIFY, "a body part has no Content-ID")
    content_id = _bare_cid(str(raw_cid))
    content_type = part.get_content_type()
    if part.is_multipart():
        return BodyPart(
            content_id=content_id,
            content_type=content_type,
            body=b"",
            nested=_read_related(part, depth + 1),
        )
    payload = part.get_payload(decode=True)
    body = payload if isinstance(payload, bytes) else b""
    try:
        presence = pidf.parse(body) if content_type == pidf.CONTENT_TYPE else None
    except PayloadError as exc:
        raise PayloadError(NOTIFY, f"part <{content_id}>: {exc}") from None
    return BodyPart(content_id, content_type, body, presence=presence)


def _read_related(message: Message, depth: int) -> ListNotification:
    if depth > MAX_NESTING:
        raise PayloadError(NOTIFY, f"lists nested deeper than {MAX_NESTING}")
    _check_defects(message, "multipart")
    if message.get_content_type() != MULTIPART_TYPE:
        raise PayloadError(
            NOTIFY, f"content type is {message.get_content_type()}, not {MULTIPART_TYPE}"
        )
    if not message.get_boundary():
        raise PayloadError(NOTIFY, "multipart/related without a boundary parameter")
    root_type = _param(message, "type")
    if root_type is None or root_type.strip().lower() != CONTENT_TYPE:
        raise PayloadError(
            NOTIFY, f"multipart/related type parameter is {root_type!r}, not {CONTENT_TYPE}"
        )
    payload = message.get_payload()
    if not isinstance(payload, list) or not payload:
        raise PayloadError(NOTIFY, "multipart/related has no body parts")
    parts: dict[str, BodyPart] = {}
    for part in payload:
        if not isinstance(part, Message):
            raise PayloadError(NOTIFY, "multipart/related holds a non-MIME part")
        body_part = _read_part(part, depth)
        if body_part.content_id in parts:
            raise PayloadError(NOTIFY, f"Content-ID {body_part.content_id!r} appears twice")
        parts[body_part.content_id] = body_part
    start = _param(message, "start")
    if start is not None:
        root_cid = _bare_cid(start)
        if root_cid not in parts:
            raise PayloadError(NOTIFY, f"start parameter {start!r} names no body part")
        root = parts.pop(root_cid)
    else:
        root = parts.pop(next(iter(parts)))
    if root.content_type != CONTENT_TYPE:
        raise PayloadError(NOTIFY, f"root part is {root.content_type}, not {CONTENT_TYPE}")
    resource_list = parse(root.body)
    for resource in resource_list.resources:
        for instance in resource.instances:
            if instance.cid is not None and instance.cid not in parts:
                raise PayloadError(
                    NOTIFY,
                    f"instance {instance.id!r} of {resource.uri} has cid {instance.cid!r} naming no part",
                )
    return ListNotification(list=resource_list, parts=parts)


def parse_notify(
    content_type: str, body: bytes, *, limit: int = xml.MULTIPART_LIMIT
) -> ListNotification:
    """Parse an RLS NOTIFY body given its Content-Type header value (RFC 4662 §4.3)."""
    if len(body) > limit:
        raise PayloadError(NOTIFY, f"{len(body)} bytes exceeds the {limit}-byte limit")
    if not content_type.isprintable() or not content_type.isascii():
        raise PayloadError(NOTIFY, "Content-Type holds control or non-ASCII characters")
    head = f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n".encode("ascii")
    try:
        message = BytesParser(policy=policy.compat32).parsebytes(head + bytes(body))
        return _read_related(message, 0)
    except PayloadError:
        raise
    except (ValueError, LookupError, TypeError, RecursionError, email_errors.MessageError) as exc:
        raise PayloadError(NOTIFY, f"unreadable MIME: {exc!r}") from None


def build_notify(
    resource_list: ResourceList, parts: list[BodyPart], *, boundary: str, start: str = "rlmi"
) -> tuple[str, bytes]:
    """Content-Type and body of an RLS NOTIFY, as an RLS (or a test peer) sends it.

    Nested lists are not built here: pass a prebuilt multipart part in `parts`.
    """
    chunks = [
        f"--{boundary}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{start}>\r\n"
        f'Content-Type: {CONTENT_TYPE};charset="UTF-8"\r\n\r\n'.encode("ascii")
        + build(resource_list)
    ]
    for part in parts:
        chunks.append(
            f"\r\n--{boundary}\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{part.content_id}>\r\nContent-Type: {part.content_type}\r\n\r\n".encode(
                "ascii"
            )
            + part.body
        )
    chunks.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    content_type = f'{MULTIPART_TYPE};type="{CONTENT_TYPE}";start="<{start}>";boundary="{boundary}"'
    return content_type, b"".join(chunks)


class ListView:
    """The state of a list subscription, kept across NOTIFYs (RFC 4662 §5).

    One view per subscription dialog: after a `VersionGap`, re-SUBSCRIBE and
    start a new view.
    """

    def __init__(self) -> None:
        self.uri: str | None = None
        self.version: int | None = None
        self.names: tuple[Name, ...] = ()
        self._resources: dict[str, Resource] = {}
        self._parts: dict[str, BodyPart] = {}

    @property
    def resources(self) -> tuple[Resource, ...]:
        return tuple(self._resources.values())

    def parts_of(self, uri: str) -> tuple[BodyPart, ...]:
        """The latest body parts of the resource's instances that carry state."""
        resource = self._resources.get(uri)
        if resource is None:
            return ()
        return tuple(
            self._parts[i.cid]
            for i in resource.instances
            if i.cid is not None and i.cid in self._parts
        )

    def presence(self, uri: str) -> pidf.Presence | None:
        """The newest PIDF document for `uri`, or None if no active instance has one."""
        for part in reversed(self.parts_of(uri)):
            if part.presence is not None:
                return part.presence
        return None

    def apply(self, notification: ListNotification) -> bool:
        """Fold a NOTIFY in; False if it was stale and ignored, VersionGap on a gap."""
        incoming = notification.list
        if self.uri is not None and incoming.uri != self.uri:
            raise PayloadError(DOCUMENT, f"list {incoming.uri} arrived on the view of {self.uri}")
        if not sequence.accept(
            DOCUMENT, self.version, incoming.version, full_state=incoming.full_state
        ):
            log.info("ignoring stale RLMI version %d of %s", incoming.version, incoming.uri)
            return False
        if incoming.full_state:
            self._resources = {}
            self._parts = {}
        self.uri = incoming.uri
        self.version = incoming.version
        if incoming.names:
            self.names = incoming.names
        for resource in incoming.resources:
            self._resources[resource.uri] = self._fold(resource, notification.parts)
        return True

    def _fold(self, resource: Resource, parts: dict[str, BodyPart]) -> Resource:
        """Merge a resource's instances by id: a partial NOTIFY may list only the
        instances that changed (RFC 4662 §5), and a full one starts empty."""
        previous = self._resources.get(resource.uri)
        instances = {} if previous is None else {i.id: i for i in previous.instances}
        for instance in resource.instances:
            replaced = instances.get(instance.id)
            if replaced is not None and replaced.cid is not None:
                self._parts.pop(replaced.cid, None)
            instances[instance.id] = instance
            if instance.cid is not None:
                self._parts[instance.cid] = parts[instance.cid]
        names = resource.names or (() if previous is None else previous.names)
        return Resource(resource.uri, names, tuple(instances.values()))
