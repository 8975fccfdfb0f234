"""Pager-mode MESSAGE (RFC 3428) from a foreign UA: baresip's `message`
command, routed by Kamailio to the phone, shows like MSRP text."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.chat.test_chat_kamailio import UNREAD, shows, start_bob
from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, phones

__all__ = ["phones"]

pytestmark = pytest.mark.kamailio


def test_a_message_from_baresip_shows_on_the_screen(
    kamailio: Kamailio, phones: PhoneFactory, baresip: Callable[..., Baresip]
) -> None:
    bob = start_bob(kamailio, phones, show_seconds=2)
    alice = baresip("alice", kamailio, watch=[kamailio.uri("bob")])
    alice.wait_registered()
    alice.command("contact_next")  # the current contact: bob
    alice.command("message", "Hello from baresip")
    state = bob.wait_for(shows("Hello from baresip"), what="baresip's text on the screen")
    assert "Alice:" in state["screen"]
    assert state["buttons"]["contact-1"]["led"] == UNREAD
    assert state["messages"][-1] == {
        "from": kamailio.uri("alice"),
        "to": kamailio.uri("bob"),
        "text": "Hello from baresip",
        "direction": "in",
        "read": False,
        "time": state["messages"][-1]["time"],
    }
    # Not read by a glance: it stays unread once the screen has moved on.
    state = bob.wait_for(lambda s: not shows("Hello from")(s), what="the text goes away")
    assert state["buttons"]["contact-1"]["led"] == UNREAD and not state["messages"][-1]["read"]
    bob.press("contact-1")  # idle, with unread: shows them, reads them, and does not call
    state = bob.wait_for(shows("Hello from baresip"), what="the unread text again")
    assert state["messages"][-1]["read"] and not state["calls"]
    assert state["buttons"]["contact-1"]["led"] != UNREAD
    bob.press("end")  # dismissed
    state = bob.wait_for(lambda s: not shows("Hello from")(s), what="dismissed")
    bob.press("contact-1")  # nothing unread: the button calls as always
    bob.wait_for(lambda s: s["calls"], what="a call to alice")
    assert bob.stop() == 0
