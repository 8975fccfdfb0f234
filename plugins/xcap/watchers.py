"""Who asked to see our presence, and what the user answered.

Kamailio sends no new `presence.winfo` NOTIFY after the pres-rules change
(see /work/shared/notes/interop.md), and drops a blocked watcher from winfo
rather than showing it terminated, so the decisions written are kept here and
win over what the last NOTIFY said.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from phone.api import address_key
from phone.payloads.watcherinfo import WatcherInfo, WatcherStatus

SHOWN = {
    WatcherStatus.PENDING: "pending",
    WatcherStatus.WAITING: "pending",
    WatcherStatus.ACTIVE: "active",
    WatcherStatus.TERMINATED: "terminated",
}


@dataclass
class WatcherRecord:
    uri: str
    name: str | None
    status: str  # "pending" | "active" | "terminated"
    decided: bool = False


class Watchers:
    """The presence watchers, in the order they first came."""

    def __init__(self) -> None:
        self.records: dict[str, WatcherRecord] = {}

    def update(self, info: WatcherInfo) -> list[WatcherRecord]:
        """Take a winfo state; the watchers newly waiting for an answer."""
        waiting = []
        for watcher_list in info.watcher_lists:
            if watcher_list.package != "presence":
                continue
            for watcher in watcher_list.watchers:
                status = SHOWN[watcher.status]
                record = self.records.get(watcher.uri)
                if record is None:
                    record = WatcherRecord(watcher.uri, watcher.display_name, status)
                    self.records[watcher.uri] = record
                    if status == "pending":
                        waiting.append(record)
                elif not record.decided:
                    if status == "pending" and record.status != "pending":
                        waiting.append(record)
                    record.status = status
        return waiting

    def decide(self, uri: str, allow: bool) -> None:
        record = self.records.setdefault(uri, WatcherRecord(uri, None, "pending"))
        record.status = "active" if allow else "terminated"
        record.decided = True

    def find(self, uri: str) -> WatcherRecord | None:
        """The watcher with the address of `uri` (user@host), or None."""
        key = address_key(uri)
        return next((r for r in self.records.values() if address_key(r.uri) == key), None)

    def state(self) -> list[dict[str, str]]:
        return [{"uri": r.uri, "status": r.status} for r in self.records.values()]

    def pending(self) -> Iterable[WatcherRecord]:
        return (r for r in self.records.values() if r.status == "pending")
