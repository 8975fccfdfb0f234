"""The event packages the phone subscribes to, and how their NOTIFY bodies fold into state.

Each package names its body types for `Accept` and turns a NOTIFY body into a
typed document with the parsers in `phone.payloads`, once, on arrival. The
packages whose documents carry versions and partial state (RLMI, RFC 4662
section 5; watcherinfo, RFC 3858 section 4.4; dialog-info, RFC 4235 section
4.1; conference-info, RFC 4575 section 4) keep the merged state of one
subscription dialog; a `VersionGap` tells the subscription to refresh, which
makes the notifier send full state (RFC 6665 section 4.2.1.2), and to start a
fresh state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from phone.payloads import conference, dialoginfo, pidf, rlmi, watcherinfo, xcapdiff
from phone.payloads.error import PayloadError


class EventPackage(StrEnum):
    PRESENCE = "presence"  # RFC 3856; with eventlist, RFC 4662
    WATCHER_INFO = "presence.winfo"  # RFC 3857
    DIALOG = "dialog"  # RFC 4235
    CONFERENCE = "conference"  # RFC 4575
    XCAP_DIFF = "xcap-diff"  # RFC 5875


PIDF = pidf.CONTENT_TYPE
MULTIPART_RELATED = rlmi.MULTIPART_TYPE

DEFAULT_ACCEPT: dict[EventPackage, tuple[str, ...]] = {
    EventPackage.PRESENCE: (PIDF,),
    EventPackage.WATCHER_INFO: (watcherinfo.CONTENT_TYPE,),
    EventPackage.DIALOG: (dialoginfo.CONTENT_TYPE,),
    EventPackage.CONFERENCE: (conference.CONTENT_TYPE,),
    EventPackage.XCAP_DIFF: (xcapdiff.CONTENT_TYPE,),
}
EVENTLIST_ACCEPT = (MULTIPART_RELATED, rlmi.CONTENT_TYPE, PIDF)


@dataclass(frozen=True)
class Decoded:
    """One NOTIFY body: the document it carried and the subscription's state after it.

    For packages without partial state both are the same object. For an RLS
    list `merged` is the `rlmi.ListView` of the whole list.
    """

    document: Any
    merged: Any


class PackageState:
    """The folded state of one subscription dialog."""

    def __init__(self, package: EventPackage, eventlist: bool) -> None:
        self.package = package
        self.eventlist = eventlist
        self._merged: Any = None
        self._view = rlmi.ListView()

    def reset(self) -> None:
        """Forget everything: the next NOTIFY will carry full state."""
        self._merged = None
        self._view = rlmi.ListView()

    def decode(self, content_type: str, content_type_header: str, body: bytes) -> Decoded:
        """Parse and fold one body; PayloadError (or its VersionGap) on bad input."""
        if self.package is EventPackage.PRESENCE:
            if self.eventlist and content_type == MULTIPART_RELATED:
                notification = rlmi.parse_notify(content_type_header, body)
                self._view.apply(notification)
                return Decoded(notification, self._view)
            self._expect(content_type, PIDF)
            presence = pidf.parse(body)
            return Decoded(presence, presence)
        expected, parse, merge = _DOCUMENTS[self.package]
        self._expect(content_type, expected)
        document = parse(body)
        if merge is None:
            return Decoded(document, document)
        self._merged = merge(self._merged, document)
        return Decoded(document, self._merged)

    def _expect(self, content_type: str, expected: str) -> None:
        if content_type != expected:
            raise PayloadError(self.package.value, f"unexpected body type {content_type!r}")


_DOCUMENTS: dict[
    EventPackage, tuple[str, Callable[[bytes], Any], Callable[[Any, Any], Any] | None]
] = {
    EventPackage.WATCHER_INFO: (watcherinfo.CONTENT_TYPE, watcherinfo.parse, watcherinfo.merge),
    EventPackage.DIALOG: (dialoginfo.CONTENT_TYPE, dialoginfo.parse, dialoginfo.merge),
    EventPackage.CONFERENCE: (conference.CONTENT_TYPE, conference.parse, conference.merge),
    EventPackage.XCAP_DIFF: (xcapdiff.CONTENT_TYPE, xcapdiff.parse, None),
}
