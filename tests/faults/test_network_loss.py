"""A phone in its own network namespace loses its link and gets it back.

Issue 15, faults: within 10 s of the link's return the phone is registered
again (the registrar forgot it meanwhile: its binding expired) and both
presence subscriptions are live (a change reaches the LED), and a call across
a 5 s outage survives (RTP flows again both ways).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.faults.netns import NetnsLink, NetnsUnavailable
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
from tests.phones import PhoneFactory, account, has_call, no_calls, phones

__all__ = ["phones"]

pytestmark = [pytest.mark.kamailio, pytest.mark.slow]

REG_EXPIRES_S = 20  # the binding runs out during the long outage
CALL_OUTAGE_S = 5.0
LONG_OUTAGE_S = 30.0


@pytest.fixture
def link() -> Iterator[NetnsLink]:
    try:
        made = NetnsLink()
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield made.create()
    finally:
        made.close()


def test_phone_recovers_from_network_loss(
    link: NetnsLink, make_kamailio: Callable[..., Kamailio], phones: PhoneFactory
) -> None:
    server = make_kamailio(listen_ip=link.host_ip)
    server.allow_watchers("bob", "carol")
    alice = phones.start(
        "alice",
        account(server, "alice") | {"reg_expires": REG_EXPIRES_S},
        [("Bob", server.uri("bob")), ("Carol", server.uri("carol"))],
        wrapper=link.wrapper,
        mic=phones.tone("alice", 440),
    )
    bob = phones.start(
        "bob", account(server, "bob"), [("Alice", server.uri("alice"))], mic=phones.tone("bob", 660)
    )
    carol = phones.start("carol", account(server, "carol"), [])
    for phone in (alice, bob, carol):
        phone.wait_for(registered, what=f"{phone.name} registered")
    alice.wait_for(leds(contact_1=GREEN, contact_2=GREEN), what="bob and carol available")

    # A call across a short outage goes on, and its audio with it.
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"), what="bob rings")
    bob.press("answer")
    for phone in (alice, bob):
        phone.wait_for(has_call("confirmed"), what=f"{phone.name}: call confirmed")
    wait_rtp_flows((alice, bob), timeout=10)
    link.down()
    time.sleep(CALL_OUTAGE_S)
    link.up()
    report("RTP both ways after a 5 s outage", wait_rtp_flows((alice, bob), timeout=RECOVERY_S))
    alice.press("end")
    for phone in (alice, bob):
        phone.wait_for(no_calls, what=f"{phone.name}: call over")

    # A long outage: the registration refresh fails and the binding expires.
    link.down()
    went_down = time.monotonic()
    alice.wait_for(lambda s: not s["registered"], timeout=LONG_OUTAGE_S, what="refresh fails")
    time.sleep(max(0.0, went_down + LONG_OUTAGE_S - time.monotonic()))
    link.up()
    returned = time.monotonic()
    alice.wait_for(registered, timeout=RECOVERY_S, what="registered after the outage")
    report("registered after a 30 s outage", time.monotonic() - returned)
    bob.press("dnd")
    carol.press("dnd")
    alice.wait_for(
        leds(contact_1=RED, contact_2=RED),
        timeout=RECOVERY_S - (time.monotonic() - returned),
        what="bob's and carol's DND after the outage",
    )
    report("both subscriptions live after a 30 s outage", time.monotonic() - returned)
    # The registrar knows the phone again: a call reaches it.
    bob.press("contact-1")
    alice.wait_for(has_call("ringing"), what="alice rings")
    bob.press("end")
    for phone in (alice, bob):
        phone.wait_for(no_calls, what=f"{phone.name}: call over")
