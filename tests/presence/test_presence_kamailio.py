"""Presence LEDs between whole phones through Kamailio (presence server, RLS, XCAP)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from phone.remote import RemotePhone
from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, account, has_call, no_calls, phones, render_config
from tests.test_registration import registered

__all__ = ["phones"]

pytestmark = [pytest.mark.kamailio, pytest.mark.slow]

GREEN = {"color": "green", "pattern": "steady"}
RED = {"color": "red", "pattern": "steady"}
RED_FAST = {"color": "red", "pattern": "fast"}
OFF = {"color": "off", "pattern": "off"}


def led(button: str, wanted: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    return lambda s: s["buttons"][button]["led"] == wanted


def screen_has(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: any(text in line for line in s["screen"])


@pytest.fixture
def server(make_kamailio: Callable[..., Kamailio]) -> Kamailio:
    return make_kamailio(extra_users={"dave": "davepw"})


def test_bob_available_in_a_call_dnd_and_gone(server: Kamailio, phones: PhoneFactory) -> None:
    server.allow_watchers("alice", "bob", "carol")
    alice = phones.start(
        "alice",
        account(server, "alice"),
        [("Bob", server.uri("bob")), ("Carol", server.uri("carol"))],
    )
    bob = phones.start(
        "bob",
        account(server, "bob"),
        [("Alice", server.uri("alice")), ("Carol", server.uri("carol"))],
    )
    carol = phones.start("carol", account(server, "carol"), [("Bob", server.uri("bob"))])
    for phone in (alice, bob, carol):
        phone.wait_for(registered, what="registered")
    alice.wait_for(led("contact-1", GREEN), what="bob available")

    bob.press("contact-2")  # bob calls carol
    carol.wait_for(has_call("ringing"), what="carol rings")
    carol.press("answer")
    bob.wait_for(has_call("confirmed"), what="bob in a call")
    alice.wait_for(led("contact-1", RED), what="bob on the phone")
    # carol's own call with bob takes her LED for him over his presence (red)
    assert carol.state()["buttons"]["contact-1"]["led"] == GREEN
    bob.press("end")
    bob.wait_for(no_calls)
    alice.wait_for(led("contact-1", GREEN), what="bob available again")

    bob.press("dnd")
    alice.wait_for(led("contact-1", RED), what="bob in DND")
    alice.press("contact-1", hold_ms=1200)
    state = alice.wait_for(screen_has("Do not disturb"), what="the note on a long press")
    assert "Bob" in state["screen"]
    assert bob.state()["dnd"] and "DND" in bob.state()["screen"][-1]
    carol.press("contact-1")  # bob refuses calls while in DND
    carol.wait_for(screen_has("486"), what="carol refused with 486")

    bob.stop()
    alice.wait_for(led("contact-1", OFF), what="bob gone")


def test_pending_authorization_blinks_amber_and_counts_on_the_other_side(
    server: Kamailio, phones: PhoneFactory
) -> None:
    server.allow_watchers("alice")  # bob has no rules: alice's subscription to him waits
    alice = phones.start("alice", account(server, "alice"), [("Bob", server.uri("bob"))])
    bob = phones.start("bob", account(server, "bob"), [])
    alice.wait_for(led("contact-1", {"color": "amber", "pattern": "slow"}), what="pending")
    bob.wait_for(lambda s: "W:1" in s["screen"][-1], what="one watcher waiting on bob's screen")


def test_rls_one_subscription_for_all_buttons(server: Kamailio, phones: PhoneFactory) -> None:
    server.allow_watchers("bob", "carol", "dave")
    buddies = server.put_buddy_list(["bob", "carol", "dave"])
    contacts = [
        ("Bob", server.uri("bob")),
        ("Carol", server.uri("carol")),
        ("Dave", server.uri("dave")),
    ]
    alice = phones.start(
        "alice",
        account(server, "alice"),
        contacts,
        plugins={"presence": {"rls_uri": buddies}},
    )
    alice.wait_for(registered)
    bob = phones.start("bob", account(server, "bob"), [])
    alice.wait_for(led("contact-1", GREEN), timeout=15, what="bob via the list")
    carol = phones.start("carol", account(server, "carol"), [])
    # Kamailio's presence server tells RLS from whichever worker took the
    # PUBLISH; two in quick succession reached RLS in the wrong order once
    # (carol's "open" after her DND), and RLS kept the older one. So carol's
    # first publication is through the list before she changes it.
    alice.wait_for(led("contact-2", GREEN), timeout=15, what="carol via the list")
    carol.press("dnd")
    alice.wait_for(led("contact-2", RED), timeout=15, what="carol DND via the list")
    assert alice.state()["buttons"]["contact-3"]["led"] == OFF  # dave published nothing
    bob.stop()
    alice.wait_for(led("contact-1", OFF), timeout=15, what="bob gone via the list")
    log = (phones.workdir / "alice.log").read_text()
    assert log.count("subscribing to presence of") == 1, "one SUBSCRIBE for all buttons"


def blf_config(path: Path, uri: str) -> None:
    text = path.read_text()
    text = text.replace(f'uri = "{uri}"\n', f'uri = "{uri}"\nblf = true\n', 1)
    path.write_text(text)


def test_blf_ringing_then_in_call(server: Kamailio, phones: PhoneFactory) -> None:
    server.allow_watchers("alice", "bob", "carol")
    # Presence has no "ringing": the fast blink can only come from bob's dialog state.
    bob = phones.start("bob", account(server, "bob"), [("Carol", server.uri("carol"))], plugins={})
    carol = phones.start("carol", account(server, "carol"), [("Bob", server.uri("bob"))])
    alice_config = render_config(
        account(server, "alice"), [("Bob", server.uri("bob"))], phones.workdir, "alice"
    )
    blf_config(alice_config, server.uri("bob"))
    alice = RemotePhone("alice", alice_config, phones.workdir, log_level="DEBUG").start()
    phones.phones.append(alice)
    for phone in (alice, bob, carol):
        phone.wait_for(registered)
    alice.wait_for(led("contact-1", GREEN), what="bob available")
    carol.press("contact-1")
    bob.wait_for(has_call("ringing"), what="bob rings")
    alice.wait_for(led("contact-1", RED_FAST), what="bob's line rings (BLF)")
    bob.press("answer")
    alice.wait_for(led("contact-1", RED), what="bob's line in a call (BLF)")
    carol.press("end")
    alice.wait_for(led("contact-1", GREEN), what="bob free again")


def test_leds_recover_after_kamailio_restart(server: Kamailio, phones: PhoneFactory) -> None:
    server.allow_watchers("alice", "bob")
    alice = phones.start("alice", account(server, "alice", "tcp"), [("Bob", server.uri("bob"))])
    bob = phones.start("bob", account(server, "bob", "tcp"), [])
    alice.wait_for(led("contact-1", GREEN), what="bob available")
    server.restart()
    bob.press("dnd")
    alice.wait_for(led("contact-1", RED), timeout=30, what="bob's DND after the restart")


def test_baresip_online_offline(
    server: Kamailio, phones: PhoneFactory, baresip: Callable[..., Baresip]
) -> None:
    server.allow_watchers("bob")
    bob = baresip("bob", server)
    bob.wait_registered()
    alice = phones.start("alice", account(server, "alice"), [("Bob", server.uri("bob"))])
    alice.wait_for(registered)
    bob.presence("online")
    alice.wait_for(led("contact-1", GREEN), what="baresip online")
    bob.presence("offline")
    alice.wait_for(led("contact-1", OFF), what="baresip offline")
    bob.presence("online")
    alice.wait_for(led("contact-1", GREEN), what="baresip online again")
