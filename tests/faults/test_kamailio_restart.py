"""Kamailio is restarted under a phone in a call.

Issue 15, faults: the call goes on (its media is end to end), and within 10 s
the phone is registered again (the restarted registrar keeps bindings in
memory only, so it has lost them) and both presence subscriptions are live
again (the restarted presence server has lost their dialogs): carol's and
dave's, while alice talks to bob.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.recovery import (
    GREEN,
    RECOVERY_S,
    RED,
    leds,
    registered,
    report,
    wait_rtp_flows,
)
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, account, has_call, phones

__all__ = ["phones"]

pytestmark = [pytest.mark.kamailio, pytest.mark.slow]


def test_call_and_registration_survive_a_kamailio_restart(
    make_kamailio: Callable[..., Kamailio], phones: PhoneFactory
) -> None:
    server = make_kamailio(extra_users={"dave": "davepw"})
    server.allow_watchers("carol", "dave")
    alice = phones.start(
        "alice",
        account(server, "alice"),
        [("Bob", server.uri("bob")), ("Carol", server.uri("carol")), ("Dave", server.uri("dave"))],
        mic=phones.tone("alice", 440),
    )
    bob = phones.start(
        "bob", account(server, "bob"), [("Alice", server.uri("alice"))], mic=phones.tone("bob", 660)
    )
    carol = phones.start("carol", account(server, "carol"), [])
    dave = phones.start("dave", account(server, "dave"), [])
    for phone in (alice, bob, carol, dave):
        phone.wait_for(registered, what=f"{phone.name} registered")
    alice.wait_for(leds(contact_2=GREEN, contact_3=GREEN), what="carol and dave available")
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"), what="bob rings")
    bob.press("answer")
    for phone in (alice, bob):
        phone.wait_for(has_call("confirmed"), what=f"{phone.name}: call confirmed")
    wait_rtp_flows((alice, bob), timeout=10)

    server.restart()
    restarted = time.monotonic()
    assert server.bindings("alice") == [], "the restarted registrar starts with no bindings"
    report("RTP both ways after the restart", wait_rtp_flows((alice, bob), timeout=RECOVERY_S))
    carol.press("dnd")
    dave.press("dnd")
    deadline = restarted + RECOVERY_S
    while not server.bindings("alice"):
        assert time.monotonic() < deadline, "alice not registered again within 10 s"
        time.sleep(0.05)
    report("alice's binding back after the restart", time.monotonic() - restarted)
    alice.wait_for(
        leds(contact_2=RED, contact_3=RED),
        timeout=max(0.1, deadline - time.monotonic()),
        what="carol's and dave's DND after the restart",
    )
    report("both subscriptions live after the restart", time.monotonic() - restarted)
    for phone in (alice, bob):
        assert phone.state()["calls"][0]["state"] == "confirmed"
