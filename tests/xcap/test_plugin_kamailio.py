"""The XCAP plugin in whole phones against Kamailio (xcap_server, presence, RLS).

Contacts: the buttons come from alice's resource-lists document, after the
config's own contacts (the rule in plugins/xcap/README.md); a change made by
another client shows by refresh; with the server gone the buttons come from
the cache at once and the footer says "offline". Authorization: a watcher
pending at the presence server is answered on the phone, and the watcher's
phone then sees ours.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from phone.payloads import presrules
from phone.remote import RemotePhone
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, account, phones
from tests.test_registration import registered

__all__ = ["phones"]

pytestmark = [pytest.mark.kamailio, pytest.mark.slow]

GREEN = {"color": "green", "pattern": "steady"}


def lists(*entries: tuple[str, str], name: str = "friends") -> bytes:
    items = "".join(
        f'<entry uri="{uri}"><display-name>{label}</display-name></entry>' for label, uri in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
        f'<list name="{name}">{items}</list></resource-lists>'
    ).encode()


def labels(state: dict[str, Any]) -> list[str | None]:
    return [b["label"] for b in state["buttons"].values()]


def has_labels(*wanted: str | None) -> Callable[[dict[str, Any]], bool]:
    return lambda s: labels(s)[: len(wanted)] == list(wanted)


def source_is(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: s.get("contacts_source", {}).get("state") == kind


def xcap_phone(
    phones: PhoneFactory,
    server: Kamailio,
    user: str,
    contacts: list[tuple[str, str]],
    **settings: Any,
) -> RemotePhone:
    return phones.start(
        user,
        account(server, user),
        contacts,
        plugins={"xcap": {"root": server.xcap_root, "refresh_s": 5, **settings}},
    )


@pytest.fixture
def server(make_kamailio: Callable[..., Kamailio]) -> Kamailio:
    return make_kamailio(extra_users={"dave": "davepw"})


def test_contacts_sync_refresh_and_cache(server: Kamailio, phones: PhoneFactory) -> None:
    bob, carol, dave = server.uri("bob"), server.uri("carol"), server.uri("dave")
    first_etag = server.xcap_put("alice", "resource-lists", lists(("Bobby", bob), ("Carol", carol)))
    alice = xcap_phone(phones, server, "alice", [("Bob", bob)])
    state = alice.wait_for(has_labels("Bob", "Carol", None), what="config, then XCAP")
    assert state["contacts_source"] == {"kind": "xcap", "state": "synced", "etag": first_etag}

    server.xcap_put("alice", "resource-lists", lists(("Dave", dave), ("Carol", carol)))
    alice.wait_for(has_labels("Bob", "Dave", "Carol"), timeout=15, what="the change, by refresh")
    assert alice.stop() == 0

    server.stop()
    again = xcap_phone(phones, server, "alice", [("Bob", bob)])
    state = again.wait_for(has_labels("Bob", "Dave", "Carol"), timeout=3, what="from the cache")
    assert state["contacts_source"]["state"] == "offline"
    assert "offline" in state["screen"][-1]

    server.start()
    state = again.wait_for(source_is("synced"), timeout=40, what="the server back")
    assert labels(state)[:3] == ["Bob", "Dave", "Carol"]
    assert "offline" not in state["screen"][-1]


def prompted(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: any(text in line for line in s["screen"])


def watcher(uri: str, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: {"uri": uri, "status": status} in s.get("watchers", [])


def alice_on_led(phone: RemotePhone, wanted: bool) -> None:
    phone.wait_for(
        lambda s: (s["buttons"]["contact-1"]["led"] == GREEN) == wanted,
        timeout=5,
        what=f"alice {'on' if wanted else 'not on'} {phone.name}'s LED",
    )


def pres_rules(server: Kamailio) -> presrules.PresRules:
    written = httpx.get(
        server.xcap_url("alice", "pres-rules"), auth=httpx.DigestAuth("alice", "alicepw")
    )
    return presrules.parse(written.content)


def test_watchers_first_rules_allow_block_and_a_change_of_mind(
    server: Kamailio, phones: PhoneFactory
) -> None:
    bob, carol, dave = server.uri("bob"), server.uri("carol"), server.uri("dave")
    server.allow_watchers("bob", "carol", "dave")
    server.xcap_put("alice", "resource-lists", lists(("Bob", bob)))
    alice = xcap_phone(phones, server, "alice", [], deny="polite-block")
    alice.wait_for(registered, what="alice registered")
    alice.wait_for(source_is("synced"), what="alice's XCAP")

    # The first pres-rules allow the contacts: bob sees alice without a question.
    bob_phone = phones.start("bob", account(server, "bob"), [("Alice", server.uri("alice"))])
    alice_on_led(bob_phone, True)

    carol_phone = phones.start("carol", account(server, "carol"), [("Alice", server.uri("alice"))])
    alice.wait_for(prompted("carol wants to"), what="the prompt for carol")
    assert watcher(carol, "pending")(alice.state())
    alice.press("answer")
    alice.wait_for(watcher(carol, "active"), what="carol allowed")
    alice_on_led(carol_phone, True)

    dave_phone = phones.start("dave", account(server, "dave"), [("Alice", server.uri("alice"))])
    alice.wait_for(prompted("dave wants to"), what="the prompt for dave")
    alice.press("end")
    alice.wait_for(watcher(dave, "terminated"), what="dave blocked")
    alice.wait_for(
        lambda s: pres_rules(server).sub_handling(dave) is presrules.SubHandling.POLITE_BLOCK,
        what="polite-block written",
    )
    alice_on_led(dave_phone, False)

    # Dave becomes a contact; a long press on his button asks again.
    server.xcap_put("alice", "resource-lists", lists(("Bob", bob), ("Dave", dave)))
    alice.wait_for(has_labels("Bob", "Dave"), timeout=2, what="dave on a button")
    alice.press("contact-2", hold_ms=1200)
    alice.wait_for(prompted("Dave wants to"), what="the question again")
    alice.press("answer")
    alice.wait_for(watcher(dave, "active"), what="dave allowed")
    alice.wait_for(
        lambda s: pres_rules(server).sub_handling(dave) is presrules.SubHandling.ALLOW,
        what="allow written",
    )


def test_rls_services_switch_the_presence_plugin_to_the_list(
    server: Kamailio, phones: PhoneFactory
) -> None:
    server.allow_watchers("bob")
    list_uri = server.put_buddy_list(["bob"])
    alice = xcap_phone(phones, server, "alice", [])
    bob = phones.start("bob", account(server, "bob"), [])
    bob.wait_for(registered, what="bob registered")
    state = alice.wait_for(
        lambda s: s["buttons"]["contact-1"]["led"] == GREEN, timeout=10, what="bob through RLS"
    )
    watched = {(s["event"], s["target"]) for s in state["subscriptions"]}
    assert ("presence", list_uri) in watched
    assert ("presence", server.uri("bob")) not in watched  # no per-contact subscription left


class Hostile(BaseHTTPRequestHandler):
    """An XCAP root that answers a good resource-lists, then whatever `mode` says."""

    mode = "good"
    served: dict[str, int] = {}
    document = lists(("Bob", "sip:bob@example.test"), ("Carol", "sip:carol@example.test"))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        mode = type(self).mode
        type(self).served[mode] = type(self).served.get(mode, 0) + 1
        if "resource-lists" not in self.path:
            self._answer(404, b"", "text/plain")
        elif mode == "good":
            self._answer(200, self.document, "application/resource-lists+xml")
        elif mode == "bad xml":
            self._answer(200, b"<resource-lists><list>", "application/resource-lists+xml")
        elif mode == "html":
            self._answer(200, b"<html>login</html>", "text/html")
        elif mode == "redirect loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:  # 50 MB
            self.send_response(200)
            self.send_header("Content-Type", "application/resource-lists+xml")
            self.send_header("Content-Length", str(50_000_000))
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(50):
                    self.wfile.write(b" " * 1_000_000)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{type(self).mode}"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_hostile_answers_leave_cache_and_buttons(server: Kamailio, phones: PhoneFactory) -> None:
    http = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{http.server_address[1]}/xcap-root"
    try:
        alice = phones.start(
            "alice",
            account(server, "alice"),
            [],
            plugins={"xcap": {"root": root, "refresh_s": 1}},
        )
        alice.wait_for(has_labels("Bob", "Carol"), what="the good list")
        for mode in ("bad xml", "html", "redirect loop", "50 MB"):
            Hostile.mode = mode
            state = alice.wait_for(
                lambda s, mode=mode: Hostile.served.get(mode, 0) >= 2 and source_is("error")(s),
                timeout=20,
                what=f"{mode} refused",
            )
            assert labels(state)[:2] == ["Bob", "Carol"], mode
            assert state["contacts_source"]["etag"] == '"good"', mode
        Hostile.mode = "good"
        alice.wait_for(source_is("synced"), what="a good answer again")
        log = alice.log_path.read_text().splitlines()
        # one line for each refused answer (no retry for a wrong type), none from the plugin
        assert sum("text/html, not XML" in line for line in log) == Hostile.served["html"]
        assert sum("xcap: contacts error" in line for line in log) == 1
    finally:
        Hostile.mode = "good"
        http.shutdown()


class RacingProxy(BaseHTTPRequestHandler):
    """Forwards to Kamailio's XCAP; once `race` is set, the next pres-rules PUT
    is preceded by another client's write, so the plugin's If-Match fails."""

    upstream = ""
    race: Callable[[], None] | None = None
    statuses: list[tuple[str, int]] = []

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "PUT" and "pres-rules" in self.path and type(self).race is not None:
            race, type(self).race = type(self).race, None
            race()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        answer = httpx.request(
            self.command, self.upstream + self.path, headers=headers, content=body, timeout=5
        )
        type(self).statuses.append((self.command, answer.status_code))
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_PUT = do_DELETE = _forward  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        pass


def test_a_412_race_is_read_again_and_both_changes_kept(
    server: Kamailio, phones: PhoneFactory
) -> None:
    server.allow_watchers("carol")
    RacingProxy.upstream = server.xcap_root.removesuffix("/xcap-root")
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), RacingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    dave = server.uri("dave")
    portal = presrules.PresRules(
        rules=(
            presrules.Rule(
                "portal",
                presrules.Conditions(identity=(presrules.One(dave),)),
                presrules.SubHandling.ALLOW,
                presrules.FULL_PRESENCE,
            ),
        )
    )
    try:
        root = f"http://127.0.0.1:{proxy.server_address[1]}/xcap-root"
        alice = phones.start(
            "alice", account(server, "alice"), [], plugins={"xcap": {"root": root}}
        )
        alice.wait_for(source_is("synced"), what="alice's XCAP")
        carol = phones.start("carol", account(server, "carol"), [("Alice", server.uri("alice"))])
        alice.wait_for(prompted("carol wants to"), what="the prompt for carol")
        RacingProxy.race = lambda: server.xcap_put("alice", "pres-rules", presrules.build(portal))
        alice.press("answer")
        carol.wait_for(
            lambda s: s["buttons"]["contact-1"]["led"] == GREEN,
            timeout=5,
            what="alice on carol's LED",
        )
        assert ("PUT", 412) in RacingProxy.statuses
        rules = pres_rules(server)
        assert rules.rule("portal") is not None  # the other client's change is kept
        assert rules.sub_handling(server.uri("carol")) is presrules.SubHandling.ALLOW
    finally:
        proxy.shutdown()


def test_a_change_pushed_by_xcap_diff_shows_at_once(server: Kamailio, phones: PhoneFactory) -> None:
    bob, carol = server.uri("bob"), server.uri("carol")
    server.xcap_put("alice", "resource-lists", lists(("Bob", bob)))
    alice = xcap_phone(phones, server, "alice", [], refresh_s=3600)
    alice.wait_for(has_labels("Bob", None), what="the list")
    alice.wait_for(
        lambda s: (
            {"event": "xcap-diff", "target": server.uri("alice"), "state": "active"}
            in s["subscriptions"]
        ),
        what="xcap-diff subscribed",
    )
    server.xcap_put("alice", "resource-lists", lists(("Bob", bob), ("Carol", carol)))
    alice.wait_for(has_labels("Bob", "Carol"), timeout=2, what="the change, pushed")
