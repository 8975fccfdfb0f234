"""Watcher information (RFC 3858)."""

from __future__ import annotations

import pytest

from phone.payloads import PayloadError, VersionGap, watcherinfo
from phone.payloads.sequence import DocumentState
from phone.payloads.watcherinfo import (
    Watcher,
    WatcherEvent,
    WatcherInfo,
    WatcherList,
    WatcherStatus,
)
from tests.payloads.sampledata import sample

RESOURCE = "sip:alice@example.test"


def test_rfc3858_example():
    info = watcherinfo.parse(sample("rfc3858-watcherinfo.xml"))
    assert (info.version, info.state) == (0, DocumentState.FULL)
    (watchers,) = info.watcher_lists
    assert (watchers.resource, watchers.package) == ("sip:professor@example.net", "presence")
    active, pending = watchers.watchers
    assert active == Watcher(
        "8ajksjda7s",
        "sip:userA@example.net",
        WatcherStatus.ACTIVE,
        WatcherEvent.APPROVED,
        duration_subscribed=509,
    )
    assert pending.display_name == "Mr. Subscriber"
    assert info.pending == (pending,)
    assert watcherinfo.parse(watcherinfo.build(info)) == info


def _info(version: int, state: DocumentState, *watchers: Watcher) -> WatcherInfo:
    return WatcherInfo(version, state, (WatcherList(RESOURCE, "presence", watchers),))


BOB = Watcher(
    "w1",
    "sip:bob@example.test",
    WatcherStatus.PENDING,
    WatcherEvent.SUBSCRIBE,
    "Bob",
    3600,
    0,
    "en",
)
CAROL = Watcher("w2", "sip:carol@example.test", WatcherStatus.ACTIVE, WatcherEvent.APPROVED)


def test_round_trip_every_field():
    info = _info(7, DocumentState.PARTIAL, BOB, CAROL)
    assert watcherinfo.parse(watcherinfo.build(info)) == info


def test_partial_merge():
    state = watcherinfo.merge(None, _info(0, DocumentState.FULL, BOB))
    approved = Watcher("w1", BOB.uri, WatcherStatus.ACTIVE, WatcherEvent.APPROVED)
    state = watcherinfo.merge(state, _info(1, DocumentState.PARTIAL, approved, CAROL))
    assert state.version == 1
    assert state.watcher_lists[0].watchers == (approved, CAROL)
    assert state.pending == ()
    other = WatcherInfo(
        2, DocumentState.PARTIAL, (WatcherList(RESOURCE, "message-summary", (BOB,)),)
    )
    state = watcherinfo.merge(state, other)
    assert [wl.package for wl in state.watcher_lists] == ["presence", "message-summary"]
    assert watcherinfo.merge(state, _info(2, DocumentState.FULL)) is state
    state = watcherinfo.merge(state, _info(9, DocumentState.FULL, CAROL))
    assert state.watcher_lists[0].watchers == (CAROL,)
    assert len(state.watcher_lists) == 1


def test_gap_means_resubscribe():
    state = watcherinfo.merge(None, _info(0, DocumentState.FULL, BOB))
    with pytest.raises(VersionGap):
        watcherinfo.merge(state, _info(2, DocumentState.PARTIAL, CAROL))
    with pytest.raises(VersionGap):
        watcherinfo.merge(None, _info(0, DocumentState.PARTIAL, CAROL))


WI = b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" '


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (WI + b'state="full"/>', "version"),
        (WI + b'version="0"/>', "state"),
        (WI + b'version="0" state="complete"/>', "complete"),
        (WI + b'version="x" state="full"/>', "integer"),
        (
            WI + b'version="0" state="full"><watcher-list package="presence"/></watcherinfo>',
            "resource",
        ),
        (
            WI + b'version="0" state="full"><watcher-list resource="r" package="p">'
            b'<watcher id="a" event="subscribe" status="lurking">sip:x</watcher></watcher-list></watcherinfo>',
            "lurking",
        ),
        (
            WI + b'version="0" state="full"><watcher-list resource="r" package="p">'
            b'<watcher id="a" event="poked" status="active">sip:x</watcher></watcher-list></watcherinfo>',
            "poked",
        ),
        (
            WI + b'version="0" state="full"><watcher-list resource="r" package="p">'
            b'<watcher event="subscribe" status="active">sip:x</watcher></watcher-list></watcherinfo>',
            "'id'",
        ),
        (
            WI + b'version="0" state="full"><watcher-list resource="r" package="p">'
            b'<watcher id="a" event="subscribe" status="active"/></watcher-list></watcherinfo>',
            "URI",
        ),
        (
            WI + b'version="0" state="full"><watcher-list resource="r" package="p">'
            b'<watcher id="a" event="subscribe" status="active" expiration="soon">sip:x</watcher>'
            b"</watcher-list></watcherinfo>",
            "expiration",
        ),
    ],
)
def test_malformed(document, problem):
    with pytest.raises(PayloadError, match=problem):
        watcherinfo.parse(document)


def test_kamailio_notifications_merge():
    """Captured from Kamailio 5.6.3 on loopback: alice watches her presence.winfo,
    then bob and carol SUBSCRIBE to her presence without any pres-rules."""
    state = None
    for number in (1, 2, 3):
        state = watcherinfo.merge(state, watcherinfo.parse(sample(f"kamailio-winfo-{number}.xml")))
    assert state is not None and state.version == 3
    (watchers,) = state.watcher_lists
    assert watchers.resource == "sip:alice@example.test"
    assert [(w.uri, w.status, w.event) for w in state.pending] == [
        ("sip:bob@example.test", WatcherStatus.PENDING, WatcherEvent.SUBSCRIBE),
        ("sip:carol@example.test", WatcherStatus.PENDING, WatcherEvent.SUBSCRIBE),
    ]
