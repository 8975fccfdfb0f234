"""Watcher information (RFC 3858): who subscribes to our presence, and how it went.

The phone subscribes to `presence.winfo` to learn of new watchers (a pending
subscription asks the user to authorize it). `merge` folds partial-state
notifications into the last full state (RFC 3858 §4): watchers are keyed by
their `id` within a watcher-list keyed by resource and package.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from lxml import etree

from phone.payloads import sequence, xml
from phone.payloads.error import PayloadError
from phone.payloads.sequence import DocumentState

WATCHERINFO_NS = "urn:ietf:params:xml:ns:watcherinfo"
CONTENT_TYPE = "application/watcherinfo+xml"
DOCUMENT = "watcherinfo"


class WatcherStatus(StrEnum):
    """The subscription state of one watcher (RFC 3858 `status`)."""

    PENDING = "pending"
    ACTIVE = "active"
    WAITING = "waiting"
    TERMINATED = "terminated"


class WatcherEvent(StrEnum):
    """What caused the latest state change (RFC 3858 `event`, RFC 3857)."""

    SUBSCRIBE = "subscribe"
    APPROVED = "approved"
    DEACTIVATED = "deactivated"
    PROBATION = "probation"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    GIVEUP = "giveup"
    NORESOURCE = "noresource"


@dataclass(frozen=True)
class Watcher:
    """One subscription to our resource; durations and expiry are in seconds."""

    id: str
    uri: str
    status: WatcherStatus
    event: WatcherEvent
    display_name: str | None = None
    expiration: int | None = None
    duration_subscribed: int | None = None
    lang: str | None = None


@dataclass(frozen=True)
class WatcherList:
    """The watchers of one resource for one event package."""

    resource: str
    package: str
    watchers: tuple[Watcher, ...] = ()


@dataclass(frozen=True)
class WatcherInfo:
    version: int
    state: DocumentState
    watcher_lists: tuple[WatcherList, ...] = ()

    @property
    def pending(self) -> tuple[Watcher, ...]:
        """Watchers waiting for the user's authorization."""
        return tuple(
            w for wl in self.watcher_lists for w in wl.watchers if w.status is WatcherStatus.PENDING
        )


def _read_watcher(element: xml.Element) -> Watcher:
    uri = xml.text(element)
    if not uri:
        raise PayloadError(DOCUMENT, "<watcher> has no URI")
    return Watcher(
        id=xml.required_attr(element, "id", DOCUMENT),
        uri=uri,
        status=xml.enum_value(
            WatcherStatus,
            xml.required_attr(element, "status", DOCUMENT),
            DOCUMENT,
            "watcher status",
        ),
        event=xml.enum_value(
            WatcherEvent, xml.required_attr(element, "event", DOCUMENT), DOCUMENT, "watcher event"
        ),
        display_name=element.get("display-name"),
        expiration=xml.optional_int(element.get("expiration"), DOCUMENT, "watcher expiration"),
        duration_subscribed=xml.optional_int(
            element.get("duration-subscribed"), DOCUMENT, "watcher duration-subscribed"
        ),
        lang=xml.lang_of(element),
    )


def _read_list(element: xml.Element) -> WatcherList:
    return WatcherList(
        resource=xml.required_attr(element, "resource", DOCUMENT),
        package=xml.required_attr(element, "package", DOCUMENT),
        watchers=tuple(_read_watcher(e) for e in xml.children(element, WATCHERINFO_NS, "watcher")),
    )


def parse(data: bytes, *, limit: int = xml.DOCUMENT_LIMIT) -> WatcherInfo:
    """Parse an application/watcherinfo+xml body."""
    root = xml.parse(
        data, document=DOCUMENT, namespace=WATCHERINFO_NS, root="watcherinfo", limit=limit
    )
    return WatcherInfo(
        version=xml.int_value(xml.required_attr(root, "version", DOCUMENT), DOCUMENT, "version"),
        state=xml.enum_value(
            DocumentState, xml.required_attr(root, "state", DOCUMENT), DOCUMENT, "state"
        ),
        watcher_lists=tuple(
            _read_list(e) for e in xml.children(root, WATCHERINFO_NS, "watcher-list")
        ),
    )


def build(info: WatcherInfo) -> bytes:
    """The application/watcherinfo+xml body for `info`."""
    root = etree.Element(xml.qname(WATCHERINFO_NS, "watcherinfo"), nsmap={None: WATCHERINFO_NS})
    root.set("version", str(info.version))
    root.set("state", info.state.value)
    for watcher_list in info.watcher_lists:
        element = xml.sub(root, WATCHERINFO_NS, "watcher-list")
        element.set("resource", watcher_list.resource)
        element.set("package", watcher_list.package)
        for watcher in watcher_list.watchers:
            item = xml.sub(element, WATCHERINFO_NS, "watcher", watcher.uri)
            item.set("id", watcher.id)
            item.set("status", watcher.status.value)
            item.set("event", watcher.event.value)
            if watcher.display_name is not None:
                item.set("display-name", watcher.display_name)
            if watcher.expiration is not None:
                item.set("expiration", str(watcher.expiration))
            if watcher.duration_subscribed is not None:
                item.set("duration-subscribed", str(watcher.duration_subscribed))
            if watcher.lang is not None:
                item.set(xml.LANG, watcher.lang)
    return xml.serialise(root)


def merge(current: WatcherInfo | None, update: WatcherInfo) -> WatcherInfo:
    """The state after `update` (RFC 3858 §4): stale ones leave `current` as is,
    a partial one after a gap raises `VersionGap`."""
    if sequence.stale(DOCUMENT, current, update):
        assert current is not None
        return current
    if current is None or update.state is DocumentState.FULL:
        return update
    lists = {(wl.resource, wl.package): wl for wl in current.watcher_lists}
    for incoming in update.watcher_lists:
        key = (incoming.resource, incoming.package)
        existing = lists.get(key)
        watchers = {} if existing is None else {w.id: w for w in existing.watchers}
        watchers.update((w.id, w) for w in incoming.watchers)
        lists[key] = replace(incoming, watchers=tuple(watchers.values()))
    return WatcherInfo(
        version=update.version, state=DocumentState.FULL, watcher_lists=tuple(lists.values())
    )
