"""The plugin's record of watchers: winfo states in, the user's decisions kept."""

from __future__ import annotations

from phone.payloads.watcherinfo import (
    DocumentState,
    Watcher,
    WatcherEvent,
    WatcherInfo,
    WatcherList,
    WatcherStatus,
)
from plugins.xcap.watchers import Watchers

CAROL = "sip:carol@example.test"
DAVE = "sip:dave@example.test"


def info(*watchers: tuple[str, WatcherStatus], package: str = "presence") -> WatcherInfo:
    listed = tuple(
        Watcher(str(n), uri, status, WatcherEvent.SUBSCRIBE)
        for n, (uri, status) in enumerate(watchers)
    )
    return WatcherInfo(
        0, DocumentState.FULL, (WatcherList("sip:alice@example.test", package, listed),)
    )


def test_new_pending_watchers_are_asked_once() -> None:
    watchers = Watchers()
    waiting = watchers.update(info((CAROL, WatcherStatus.PENDING), (DAVE, WatcherStatus.ACTIVE)))
    assert [r.uri for r in waiting] == [CAROL]
    assert watchers.update(info((CAROL, WatcherStatus.PENDING))) == []
    assert watchers.state() == [
        {"uri": CAROL, "status": "pending"},
        {"uri": DAVE, "status": "active"},
    ]


def test_a_decision_wins_over_a_stale_notify() -> None:
    watchers = Watchers()
    watchers.update(info((CAROL, WatcherStatus.PENDING)))
    watchers.decide(CAROL, allow=False)
    assert watchers.update(info((CAROL, WatcherStatus.PENDING))) == []
    assert watchers.state() == [{"uri": CAROL, "status": "terminated"}]
    assert list(watchers.pending()) == []


def test_a_watcher_pending_again_is_asked_again_and_found_by_address() -> None:
    watchers = Watchers()
    watchers.update(info((CAROL, WatcherStatus.ACTIVE)))
    assert [r.uri for r in watchers.update(info((CAROL, WatcherStatus.PENDING)))] == [CAROL]
    found = watchers.find("sip:carol@EXAMPLE.test;transport=tcp")
    assert found is not None and found.uri == CAROL


def test_other_packages_are_not_watchers_of_presence() -> None:
    watchers = Watchers()
    assert watchers.update(info((CAROL, WatcherStatus.PENDING), package="dialog")) == []
    assert watchers.state() == []
