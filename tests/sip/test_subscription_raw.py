"""RFC 6665 subscriber behaviour against a raw UDP notifier: exact bytes, exact answers."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from phone.payloads.conference import ConferenceInfo
from phone.sip.digest import Credentials
from phone.sip.identity import Identity
from phone.sip.message import SipMessage, header_params
from phone.sip.rawsip import RawSip
from phone.sip.subscription import (
    Notification,
    Subscriber,
    SubscriptionEnded,
    SubscriptionState,
)

from .udp_peer import UdpSipPeer

CONFERENCE = """<?xml version="1.0" encoding="UTF-8"?>
<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
 entity="sip:conf@127.0.0.1" state="{state}" version="{version}"><users>{users}</users>
</conference-info>"""
USER = (
    '<user entity="sip:{name}@example.test" state="full">'
    '<endpoint entity="sip:{name}@127.0.0.1"><status>connected</status></endpoint></user>'
)


class Harness:
    def __init__(self, raw: RawSip, ep: Any, port: int, credentials: Credentials | None) -> None:
        self.ep = ep
        self.loop = asyncio.new_event_loop()
        self.me = f"sip:me@127.0.0.1:{port}"
        self.target = ("127.0.0.1", port)
        identity = Identity(self.me, lambda target: f"<{self.me}>", credentials)
        self.subscriber = Subscriber(raw, identity, self.loop)
        self.peer = UdpSipPeer("notifier")
        self.notifications: list[Notification] = []
        self.ended: list[SubscriptionEnded] = []

    def pump(self) -> None:
        self.ep.libHandleEvents(2)
        self.loop.run_until_complete(asyncio.sleep(0))

    def wait(self, condition: Callable[[], bool], timeout: float = 3.0) -> None:
        deadline = self.loop.time() + timeout
        while not condition():
            assert self.loop.time() < deadline, "timed out"
            self.pump()

    def receive(self, timeout: float = 3.0) -> SipMessage:
        return self.peer.receive(self.pump, timeout, match=lambda m: m.is_request)

    def answer(self, request: SipMessage, code: int = 200, **kwargs: Any) -> None:
        assert self.peer.last_from is not None
        self.peer.send(UdpSipPeer.response(request, code, "X", **kwargs), self.peer.last_from)

    def notify(
        self, subscribe: SipMessage, cseq: int, state: str, body: str = "", **kw: Any
    ) -> int:
        """Send a NOTIFY in the dialog of `subscribe`; return the status it got."""
        self.peer.send(
            self.peer.request(
                "NOTIFY",
                self.me,
                call_id=kw.get("call_id", subscribe.call_id),
                from_tag=kw.get("from_tag", "n1"),
                to=subscribe.require("from"),
                cseq=cseq,
                headers=(("Event", kw.get("event", "conference")), ("Subscription-State", state)),
                body=body.encode(),
                content_type="application/conference-info+xml",
            ),
            self.target,
        )
        return self.peer.receive(self.pump, 3.0, match=lambda m: not m.is_request).status or 0

    def close(self) -> None:
        self.loop.run_until_complete(self._close())
        self.peer.close()
        self.loop.close()

    async def _close(self) -> None:
        closing = asyncio.ensure_future(self.subscriber.close(timeout=0.5))
        while not closing.done():
            self.ep.libHandleEvents(2)
            await asyncio.sleep(0.002)


@pytest.fixture
def harness(raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any) -> Iterator[Harness]:
    h = Harness(raw_sip, pj_endpoint, sip_transports.udp_port, Credentials("me", "secret"))
    yield h
    h.close()


def _subscribe(h: Harness, **kwargs: Any) -> tuple[Any, SipMessage]:
    sub = h.subscriber.subscribe(
        "conference", h.peer.uri, h.notifications.append, on_end=h.ended.append, **kwargs
    )
    request = h.receive()
    h.answer(request, 200, to_tag="n1", headers=(("Expires", "60"), ("Contact", f"<{h.peer.uri}>")))
    return sub, request


def test_conference_full_then_partial_then_gap_then_unsubscribe(harness: Harness) -> None:
    h = harness
    sub, subscribe = _subscribe(h, expires=60)
    assert subscribe.header("event") == "conference"
    assert subscribe.header("accept") == "application/conference-info+xml"
    assert subscribe.header("expires") == "60" and subscribe.to.tag is None
    assert subscribe.header("contact") == f"<{h.me}>"

    full = CONFERENCE.format(state="full", version=1, users=USER.format(name="bob"))
    assert h.notify(subscribe, 1, "active;expires=60", full) == 200
    h.wait(lambda: len(h.notifications) == 1)
    first = h.notifications[0]
    assert first.state is SubscriptionState.ACTIVE and isinstance(first.document, ConferenceInfo)
    assert [u.entity for u in first.merged.users] == ["sip:bob@example.test"]

    partial = CONFERENCE.format(state="partial", version=2, users=USER.format(name="carol"))
    assert h.notify(subscribe, 2, "active;expires=60", partial) == 200
    h.wait(lambda: len(h.notifications) == 2)
    assert sorted(u.entity for u in h.notifications[1].merged.users) == [
        "sip:bob@example.test",
        "sip:carol@example.test",
    ]
    # A retransmission is answered and not delivered twice; an older CSeq gets 500.
    assert h.notify(subscribe, 2, "active;expires=60", partial) == 200
    assert h.notify(subscribe, 1, "active;expires=60", partial) == 500

    # Version 4 after 2: state is unknown, so the phone refreshes in the dialog.
    gap = CONFERENCE.format(state="partial", version=4, users=USER.format(name="dave"))
    assert h.notify(subscribe, 3, "active;expires=60", gap) == 200
    refresh = h.receive()
    assert refresh.call_id == subscribe.call_id and refresh.to.tag == "n1"
    assert refresh.request_uri == h.peer.uri and refresh.cseq[0] > subscribe.cseq[0]
    h.answer(refresh, 200, headers=(("Expires", "60"),))
    h.wait(lambda: len(h.notifications) == 3)
    assert h.notifications[2].error and "re-subscribe" in h.notifications[2].error

    sub.end()
    bye = h.receive()
    assert bye.header("expires") == "0" and bye.call_id == subscribe.call_id
    h.answer(bye, 200, headers=(("Expires", "0"),))
    h.wait(lambda: bool(h.ended))
    assert h.ended[0].reason == "ended" and sub.state is SubscriptionState.TERMINATED
    assert h.notify(subscribe, 4, "terminated;reason=timeout") == 200


def test_notify_of_no_subscription_gets_481(harness: Harness) -> None:
    h = harness
    _, subscribe = _subscribe(h)
    assert h.notify(subscribe, 1, "active", call_id=secrets.token_hex(8)) == 481
    assert h.notify(subscribe, 1, "active", from_tag="other-fork") == 481
    assert h.notify(subscribe, 1, "active", event="dialog") == 489


@pytest.mark.parametrize(
    ("state", "new_dialog", "min_wait"),
    [
        ("terminated;reason=deactivated", True, 0.0),
        ("terminated;reason=probation;retry-after=1", True, 0.9),
    ],
)
def test_terminated_resubscribes(
    harness: Harness, state: str, new_dialog: bool, min_wait: float
) -> None:
    h = harness
    sub, subscribe = _subscribe(h)
    assert h.notify(subscribe, 1, state) == 200
    started = h.loop.time()
    again = h.receive(timeout=3.0)
    assert h.loop.time() - started >= min_wait
    assert again.call_id != subscribe.call_id and again.to.tag is None
    assert sub.state is SubscriptionState.SUBSCRIBING and not h.ended


def test_rejected_stops_and_reports(harness: Harness) -> None:
    h = harness
    sub, subscribe = _subscribe(h)
    assert h.notify(subscribe, 1, "terminated;reason=rejected") == 200
    h.wait(lambda: bool(h.ended))
    assert h.ended[0].reason == "rejected" and sub.state is SubscriptionState.TERMINATED
    with pytest.raises(TimeoutError):
        h.peer.receive(h.pump, 0.3, match=lambda m: m.is_request)


def test_digest_challenge_is_answered(harness: Harness) -> None:
    h = harness
    h.subscriber.subscribe("dialog", h.peer.uri, h.notifications.append)
    first = h.receive()
    h.answer(
        first, 401, headers=(("WWW-Authenticate", 'Digest realm="r", nonce="abc", qop="auth"'),)
    )
    second = h.receive()
    assert second.call_id == first.call_id and second.cseq[0] == first.cseq[0] + 1
    _, params = header_params(second.require("authorization").replace(",", ";"))
    fields = {k: v for k, v in params.items()}
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    ha1, ha2 = md5("me:r:secret"), md5(f"SUBSCRIBE:{h.peer.uri}")
    expected = md5(f"{ha1}:abc:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
    assert fields["response"] == expected
    h.answer(second, 200, to_tag="n1", headers=(("Expires", "60"),))


PACKAGE_BODIES = {
    "presence": (
        "application/pidf+xml",
        '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" '
        'entity="sip:bob@example.test"><tuple id="t1"><status><basic>open</basic></status>'
        "</tuple></presence>",
        lambda d: d.basic.value == "open",
    ),
    "presence.winfo": (
        "application/watcherinfo+xml",
        '<?xml version="1.0"?><watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" '
        'version="0" state="full"><watcher-list resource="sip:me@example.test" package="presence">'
        '<watcher id="w1" event="subscribe" status="pending">sip:carol@example.test</watcher>'
        "</watcher-list></watcherinfo>",
        lambda d: [w.uri for w in d.pending] == ["sip:carol@example.test"],
    ),
    "dialog": (
        "application/dialog-info+xml",
        '<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" '
        'state="full" entity="sip:bob@example.test"><dialog id="d1"><state>confirmed</state>'
        "</dialog></dialog-info>",
        lambda d: d.busy,
    ),
    "xcap-diff": (
        "application/xcap-diff+xml",
        '<?xml version="1.0"?><xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" '
        'xcap-root="http://127.0.0.1/xcap-root"><document '
        'sel="resource-lists/users/sip:me@example.test/index" new-etag="e2" previous-etag="e1"/>'
        "</xcap-diff>",
        lambda d: d.documents[0].new_etag == "e2",
    ),
}


@pytest.mark.parametrize("event", sorted(PACKAGE_BODIES))
def test_each_package_delivers_its_typed_document(harness: Harness, event: str) -> None:
    h = harness
    content_type, body, check = PACKAGE_BODIES[event]
    h.subscriber.subscribe(event, h.peer.uri, h.notifications.append)
    subscribe = h.receive()
    assert subscribe.header("event") == event and subscribe.header("accept") == content_type
    h.answer(subscribe, 200, to_tag="n1", headers=(("Expires", "60"),))
    h.peer.send(
        h.peer.request(
            "NOTIFY",
            h.me,
            call_id=subscribe.call_id,
            from_tag="n1",
            to=subscribe.require("from"),
            cseq=1,
            headers=(("Event", event), ("Subscription-State", "active;expires=60")),
            body=body.encode(),
            content_type=content_type,
        ),
        h.target,
    )
    h.wait(lambda: bool(h.notifications))
    notification = h.notifications[0]
    assert notification.error is None and check(notification.document)
    assert notification.merged is not None


def test_bad_body_is_answered_and_reported(harness: Harness) -> None:
    h = harness
    _, subscribe = _subscribe(h)
    assert h.notify(subscribe, 1, "active", "<conference-info><broken") == 200
    h.wait(lambda: bool(h.notifications))
    assert h.notifications[0].document is None and h.notifications[0].error


def test_refresh_before_expiry_and_min_expires(harness: Harness) -> None:
    h = harness
    h.subscriber.subscribe("dialog", h.peer.uri, h.notifications.append, expires=1)
    first = h.receive()
    assert first.header("expires") == "1"
    h.answer(first, 423, headers=(("Min-Expires", "2"),))
    second = h.receive()
    assert second.header("expires") == "2" and second.call_id == first.call_id
    h.answer(second, 200, to_tag="n1", headers=(("Expires", "2"),))
    answered = h.loop.time()
    refresh = h.receive(timeout=3.0)
    assert refresh.to.tag == "n1" and refresh.call_id == first.call_id
    assert 0.8 <= h.loop.time() - answered < 2.0  # before the 2 s expiry


def test_pjsua_buddy_notifies_still_reach_pjsua(harness: Harness, pj_endpoint: Any) -> None:
    """The 481 for unknown NOTIFYs must leave pjsua's own subscriptions alone."""
    import pjsua2 as pj

    h = harness
    config = pj.AccountConfig()
    config.idUri = h.me
    account = pj.Account()
    account.create(config)

    class Buddy(pj.Buddy):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.changes = 0

        def onBuddyState(self) -> None:  # noqa: N802 (pjsua2 callback)
            self.changes += 1

    buddy = Buddy()
    buddy_config = pj.BuddyConfig()
    buddy_config.uri = h.peer.uri
    buddy_config.subscribe = True
    try:
        buddy.create(account, buddy_config)
        subscribe = h.receive()
        assert subscribe.header("event") == "presence"
        h.answer(subscribe, 200, to_tag="b1", headers=(("Expires", "600"),))
        pidf = (
            '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" '
            f'entity="{h.peer.uri}"><tuple id="t"><status><basic>open</basic></status>'
            "<note>Lunch</note></tuple></presence>"
        )
        h.peer.send(
            h.peer.request(
                "NOTIFY",
                h.me,
                call_id=subscribe.call_id,
                from_tag="b1",
                to=subscribe.require("from"),
                cseq=1,
                headers=(("Event", "presence"), ("Subscription-State", "active;expires=600")),
                body=pidf.encode(),
                content_type="application/pidf+xml",
            ),
            h.target,
        )
        answer = h.peer.receive(h.pump, match=lambda m: not m.is_request)
        assert answer.status == 200
        h.wait(lambda: buddy.changes > 0)
        assert buddy.getInfo().presStatus.status == pj.PJSUA_BUDDY_STATUS_ONLINE
    finally:
        buddy.subscribePresence(False)
        for _ in range(20):
            h.pump()
        account.shutdown()


def test_accepted_and_no_notify_yet_is_awaiting_notify(harness: Harness) -> None:
    """What the presence plugin's RLS fallback looks at (RFC 6665 4.2.1.2)."""
    h = harness
    sub = h.subscriber.subscribe("conference", h.peer.uri, h.notifications.append)
    subscribe = h.receive()
    assert not sub.awaiting_notify, "no answer yet"
    h.answer(subscribe, 200, to_tag="n1", headers=(("Expires", "60"),))
    h.wait(lambda: sub.awaiting_notify)
    full = CONFERENCE.format(state="full", version=1, users=USER.format(name="bob"))
    assert h.notify(subscribe, 1, "active;expires=60", full) == 200
    assert not sub.awaiting_notify
