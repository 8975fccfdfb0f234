"""Presence without a server (direct mode): each phone is its own presence agent
(RFC 3856) and watches its contacts at their own addresses."""

from __future__ import annotations

import pytest

from tests.phones import PhoneFactory, has_call, no_calls, phones
from tests.presence.test_presence_kamailio import GREEN, OFF, RED, led, screen_has

__all__ = ["phones"]

pytestmark = pytest.mark.slow


def test_leds_follow_a_direct_contact(phones: PhoneFactory) -> None:
    bob, bob_uri = phones.direct("bob")
    alice, _ = phones.direct("alice", [("Bob", bob_uri)])
    alice.wait_for(led("contact-1", GREEN), what="Bob available")

    bob.press("dnd")
    alice.wait_for(led("contact-1", RED), what="Bob with DND")
    alice.press("contact-1", hold_ms=1000)
    assert alice.wait_for(screen_has("Do not disturb"))["screen"][1] == "Bob"
    bob.press("dnd")
    alice.wait_for(led("contact-1", GREEN), what="Bob back")

    assert bob.stop() == 0
    alice.wait_for(led("contact-1", OFF), what="Bob closed")


def test_an_unread_text_winks_in_the_colour_of_presence(phones: PhoneFactory) -> None:
    """A message does not hide whether its sender is there: the LED keeps their
    presence colour and winks while the text is unread (the chat plugin's mark
    over the presence layer)."""
    bob, bob_uri = phones.direct("bob")
    alice, alice_uri = phones.direct("alice", [("Bob", bob_uri)])
    alice.wait_for(led("contact-1", GREEN), what="Bob available")
    assert bob.request(cmd="message", to=alice_uri, text="Lunch?")["status"] == 200
    alice.wait_for(led("contact-1", {**GREEN, "pattern": "wink"}), what="unread, Bob available")
    bob.press("dnd")
    alice.wait_for(led("contact-1", {**RED, "pattern": "wink"}), what="unread, Bob with DND")
    alice.press("contact-1")  # no call: shows his unread text, which reads it
    alice.wait_for(led("contact-1", RED), what="read: presence alone")
    assert alice.state()["messages"][-1]["read"] is True
    assert bob.stop() == 0
    assert alice.stop() == 0


def test_a_call_shows_on_the_phone_to_direct_watchers(phones: PhoneFactory) -> None:
    carol, carol_uri = phones.direct("carol")
    bob, bob_uri = phones.direct("bob", [("Carol", carol_uri)])
    alice, _ = phones.direct("alice", [("Bob", bob_uri)])
    alice.wait_for(led("contact-1", GREEN), what="Bob available")
    bob.press("contact-1")
    carol.wait_for(has_call("ringing"), what="carol rings")
    carol.press("answer")
    bob.wait_for(has_call("confirmed"), what="bob in a call")
    alice.wait_for(led("contact-1", RED), what="Bob on the phone")
    carol.press("end")
    bob.wait_for(no_calls, what="hung up")
    alice.wait_for(led("contact-1", GREEN), what="Bob available again")


def test_a_conference_room_is_not_watched(phones: PhoneFactory) -> None:
    bob, bob_uri = phones.direct("bob")
    room = {"name": "Team", "uri": "sip:team@127.0.0.1:9"}
    alice, _ = phones.direct("alice", [("Bob", bob_uri)], plugins={"conference": {"rooms": [room]}})
    buttons = alice.state()["buttons"]
    by_label = {b["label"]: name for name, b in buttons.items()}
    assert {"Team", "Bob"} <= by_label.keys(), buttons
    alice.wait_for(led(by_label["Bob"], GREEN), what="Bob available")
    targets = [s["target"] for s in alice.state()["subscriptions"]]
    assert any("bob@" in t for t in targets), targets
    assert not any("team@" in t for t in targets), targets
