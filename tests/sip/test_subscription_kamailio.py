"""Subscriptions against a real provider: Kamailio's presence server, RLS and XCAP."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from phone.payloads import pidf
from phone.payloads.dialoginfo import DialogInfo, DialogState
from phone.payloads.rlmi import ListView
from phone.payloads.watcherinfo import WatcherInfo
from phone.sip.digest import Credentials, DigestChallenge
from phone.sip.identity import Identity
from phone.sip.message import SipMessage
from phone.sip.rawsip import OutgoingRequest, RawSip
from phone.sip.subscription import Notification, Subscriber, SubscriptionState
from tests.peers.kamailio import Kamailio

pytestmark = [pytest.mark.kamailio, pytest.mark.slow]

PIDF_BODY = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{user}@example.test">
<tuple id="t-{user}"><status><basic>open</basic></status><note>{note}</note></tuple></presence>"""

DIALOG_BODY = """<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" state="full"
 entity="sip:{user}@example.test">{dialog}</dialog-info>"""
DIALOG = '<dialog id="d1" call-id="c1" direction="initiator"><state>{state}</state></dialog>'

RESOURCE_LISTS = b"""<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">
    <entry uri="sip:bob@example.test"/>
    <entry uri="sip:carol@example.test"/>
    <entry uri="sip:dave@example.test"/>
  </list>
</resource-lists>"""


class Phone:
    """The subscriber side in-process: pjsua transports, the hook, an asyncio loop."""

    def __init__(self, raw: RawSip, ep: Any, udp_port: int, server: Kamailio) -> None:
        self.raw = raw
        self.ep = ep
        self.server = server
        self.port = udp_port
        self.loop = asyncio.new_event_loop()
        self.subscriber = Subscriber(raw, self.identity("alice"), self.loop)
        self.notifications: list[Notification] = []
        self._publications: dict[tuple[str, str], str] = {}

    def identity(self, user: str) -> Identity:
        contact = f"<sip:{user}@127.0.0.1:{self.port}>"
        return Identity(
            aor=self.server.uri(user),
            contact=lambda target: contact,
            credentials=Credentials(user, self.server.users[user]),
            route=(f"<sip:127.0.0.1:{self.server.sip_port};lr>",),
        )

    def pump(self) -> None:
        self.ep.libHandleEvents(2)
        self.loop.run_until_complete(asyncio.sleep(0.001))

    def wait(self, condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.pump()

    def publish(self, user: str, event: str, content_type: str, body: str) -> None:
        """PUBLISH (RFC 3903) as `user`, answering the proxy's challenge; modify if published."""
        identity = self.identity(user)
        etag = self._publications.get((user, event))
        answers: list[SipMessage | None] = []
        authorization: tuple[tuple[str, str], ...] = ()
        for cseq in (1, 2):
            headers = identity.route and (("Route", identity.route[0]),)
            headers += (("Event", event), ("Expires", "600")) + authorization
            if etag:
                headers += (("SIP-If-Match", etag),)
            self.raw.send(
                OutgoingRequest(
                    "PUBLISH",
                    identity.aor,
                    f"<{identity.aor}>;tag={secrets.token_hex(4)}",
                    f"<{identity.aor}>",
                    f"pub-{user}-{event}-{secrets.token_hex(4)}",
                    cseq,
                    identity.contact(identity.aor),
                    headers,
                    content_type,
                    body.encode(),
                ),
                answers.append,
            )
            self.wait(lambda n=cseq: len(answers) == n, what="PUBLISH answer")
            answer = answers[-1]
            assert answer is not None and answer.status is not None
            if answer.status == 407:
                challenge = DigestChallenge.parse(answer.require("proxy-authenticate"))
                assert identity.credentials is not None
                value = challenge.authorization(identity.credentials, "PUBLISH", identity.aor)
                authorization = (("Proxy-Authorization", value),)
                continue
            assert answer.status == 200, answer.status
            self._publications[(user, event)] = answer.require("sip-etag")
            return
        raise AssertionError("PUBLISH not accepted")

    def close(self) -> None:
        async def closing() -> None:
            task = asyncio.ensure_future(self.subscriber.close(timeout=2.0))
            while not task.done():
                self.ep.libHandleEvents(2)
                await asyncio.sleep(0.002)

        self.loop.run_until_complete(closing())
        self.loop.close()


@pytest.fixture
def server(make_kamailio: Callable[..., Kamailio]) -> Kamailio:
    return make_kamailio(extra_users={"dave": "davepw"})


@pytest.fixture
def phone(
    raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any, server: Kamailio
) -> Iterator[Phone]:
    p = Phone(raw_sip, pj_endpoint, sip_transports.udp_port, server)
    yield p
    p.close()


def _notes(view: ListView) -> dict[str, set[str]]:
    """Every note of every tuple per resource (a restart may leave two publications)."""
    notes: dict[str, set[str]] = {}
    for resource in view.resources:
        presence = view.presence(resource.uri)
        if presence is not None:
            notes[resource.uri] = {n.text for t in presence.tuples for n in t.notes}
    return notes


def _rls_setup(server: Kamailio) -> None:
    for user in ("bob", "carol", "dave"):
        server.xcap_put(user, "pres-rules", server.xcap_example("allow-local-pres-rules"))
    server.xcap_put("alice", "resource-lists", RESOURCE_LISTS)
    server.xcap_put("alice", "rls-services", server.xcap_example("alice-rls-services"))


def _latest_view(phone: Phone) -> ListView | None:
    views = [n.merged for n in phone.notifications if isinstance(n.merged, ListView)]
    return views[-1] if views else None


def test_rls_list_of_three_delivers_typed_presence(phone: Phone, server: Kamailio) -> None:
    _rls_setup(server)
    sub = phone.subscriber.subscribe(
        "presence", "sip:alice-buddies@example.test", phone.notifications.append, eventlist=True
    )
    phone.wait(lambda: _latest_view(phone) is not None, what="the first RLS NOTIFY")
    view = _latest_view(phone)
    assert view is not None
    assert sorted(r.uri for r in view.resources) == [
        "sip:bob@example.test",
        "sip:carol@example.test",
        "sip:dave@example.test",
    ]
    for user in ("bob", "carol", "dave"):
        phone.publish(
            user, "presence", pidf.CONTENT_TYPE, PIDF_BODY.format(user=user, note=f"{user}-1")
        )
    expected = {f"sip:{u}@example.test": {f"{u}-1"} for u in ("bob", "carol", "dave")}
    phone.wait(
        lambda: (v := _latest_view(phone)) is not None and _notes(v) == expected,
        timeout=10.0,
        what="presence of all three",
    )
    assert sub.state is SubscriptionState.ACTIVE
    assert all(n.error is None for n in phone.notifications)


def test_rls_subscription_recovers_after_kamailio_restart(phone: Phone, server: Kamailio) -> None:
    _rls_setup(server)
    # Over TCP, as Blink talks to its provider: a restart breaks the connection.
    proxy = f"sip:127.0.0.1:{server.sip_port};transport=tcp"
    phone.subscriber.identity = replace(phone.identity("alice"), route=(f"<{proxy};lr>",))
    phone.subscriber.watch_flow(proxy, interval=1.0)
    phone.subscriber.subscribe(
        "presence", "sip:alice-buddies@example.test", phone.notifications.append, eventlist=True
    )
    phone.publish("bob", "presence", pidf.CONTENT_TYPE, PIDF_BODY.format(user="bob", note="before"))
    phone.wait(
        lambda: (
            (v := _latest_view(phone)) is not None
            and "before" in _notes(v).get("sip:bob@example.test", set())
        ),
        timeout=10.0,
        what="bob before the restart",
    )
    server.restart()
    restarted = time.monotonic()
    phone.publish("bob", "presence", pidf.CONTENT_TYPE, PIDF_BODY.format(user="bob", note="after"))
    phone.wait(
        lambda: (
            (v := _latest_view(phone)) is not None
            and "after" in _notes(v).get("sip:bob@example.test", set())
        ),
        timeout=10.0,
        what="bob after the restart",
    )
    assert time.monotonic() - restarted < 10.0


def test_winfo_shows_a_new_watcher_as_pending(phone: Phone, server: Kamailio) -> None:
    phone.subscriber.subscribe(
        "presence.winfo", server.uri("alice"), phone.notifications.append, expires=600
    )
    phone.wait(
        lambda: any(isinstance(n.merged, WatcherInfo) for n in phone.notifications),
        what="the first winfo NOTIFY",
    )
    carol_sees: list[Notification] = []
    carol = phone.subscriber.subscribe(
        "presence", server.uri("alice"), carol_sees.append, identity=phone.identity("carol")
    )

    def carol_pending() -> bool:
        infos = [n.merged for n in phone.notifications if isinstance(n.merged, WatcherInfo)]
        return bool(infos) and any(w.uri == server.uri("carol") for w in infos[-1].pending)

    phone.wait(carol_pending, timeout=10.0, what="carol as a pending watcher")
    phone.wait(lambda: bool(carol_sees), what="carol's own NOTIFY")
    assert carol.state is SubscriptionState.PENDING


def test_dialog_subscription_follows_a_call(phone: Phone, server: Kamailio) -> None:
    server.xcap_put("bob", "pres-rules", server.xcap_example("allow-local-pres-rules"))
    phone.subscriber.subscribe("dialog", server.uri("bob"), phone.notifications.append)
    phone.wait(lambda: bool(phone.notifications), what="the first dialog NOTIFY")

    def last_state() -> DialogState | None:
        # The document as notified: the merged view drops a dialog once terminated.
        infos = [n.document for n in phone.notifications if isinstance(n.document, DialogInfo)]
        if not infos or not infos[-1].dialogs:
            return None
        return infos[-1].dialogs[0].state

    # bob's phone publishes its call's dialog state (RFC 4235 over RFC 3903).
    for version, state in enumerate(("early", "confirmed", "terminated"), start=1):
        body = DIALOG_BODY.format(version=version, user="bob", dialog=DIALOG.format(state=state))
        phone.publish("bob", "dialog", "application/dialog-info+xml", body)
        phone.wait(lambda s=state: last_state() == DialogState(s), timeout=10.0, what=state)
