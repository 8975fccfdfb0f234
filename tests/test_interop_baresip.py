"""Calls with a foreign SIP phone (baresip) through Kamailio, both directions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, account, dominant_frequency, has_call, no_calls, phones
from tests.test_registration import registered

__all__ = ["phones"]

pytestmark = pytest.mark.kamailio


def test_phone_calls_baresip_and_hears_it(
    kamailio: Kamailio, phones: PhoneFactory, baresip: Callable[..., Baresip]
) -> None:
    bob = baresip("bob", kamailio, auto_answer=True)
    bob.wait_registered()
    alice = phones.start(
        "alice",
        account(kamailio, "alice"),
        [("Bob", kamailio.uri("bob"))],
        mic=phones.tone("alice", 500),
    )
    alice.wait_for(registered)
    alice.press("contact-1")
    alice.wait_for(has_call("confirmed"), what="baresip answered")
    bob.wait_event("CALL_ESTABLISHED")
    alice.wait_for(lambda s: s["screen"][2] >= "In call 00:02", timeout=6)
    alice.press("contact-1")  # hang up by pressing the button again
    alice.wait_for(no_calls)
    bob.wait_event("CALL_CLOSED")
    alice.stop()
    assert dominant_frequency(phones.workdir / "alice-speaker.wav") == pytest.approx(440, rel=0.01)


def test_baresip_calls_the_phone(
    kamailio: Kamailio, phones: PhoneFactory, baresip: Callable[..., Baresip]
) -> None:
    carol = baresip("carol", kamailio)
    carol.wait_registered()
    alice = phones.start(
        "alice",
        account(kamailio, "alice"),
        [("Carol", kamailio.uri("carol"))],
        plugins={"presence": {"enabled": False}},  # the LED is about the call alone here
    )
    alice.wait_for(registered)
    carol.dial(kamailio.uri("alice"))
    state = alice.wait_for(has_call("ringing"), what="alice rings")
    assert state["screen"][1:3] == ["Incoming call", "Carol"]
    assert state["buttons"]["contact-1"]["led"] == {"color": "green", "pattern": "fast"}
    alice.press("contact-1")  # the caller's button answers
    carol.wait_event("CALL_ESTABLISHED")
    alice.wait_for(has_call("confirmed"))
    carol.hangup()
    state = alice.wait_for(no_calls, what="baresip hung up")
    assert state["buttons"]["contact-1"]["led"]["color"] == "off"
