"""Phones registered with a real Kamailio: calls through the proxy, failures, recovery."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.peers.kamailio import Kamailio, self_signed_certificate
from tests.phones import PhoneFactory, account, dominant_frequency, has_call, no_calls, phones

__all__ = ["phones"]

pytestmark = pytest.mark.kamailio


def registered(state: dict[str, Any]) -> bool:
    return bool(state["registered"])


def screen_has(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: any(text in line for line in s["screen"])


def test_registered_phones_call_through_kamailio(kamailio: Kamailio, phones: PhoneFactory) -> None:
    alice = phones.start(
        "alice",
        account(kamailio, "alice"),
        [("Bob", kamailio.uri("bob"))],
        mic=phones.tone("alice", 440),
    )
    bob = phones.start(
        "bob",
        account(kamailio, "bob"),
        [("Alice", kamailio.uri("alice"))],
        mic=phones.tone("bob", 660),
    )
    for phone in (alice, bob):
        state = phone.wait_for(registered, what="registered")
        assert state["screen"][0].endswith("registered")

    alice.press("contact-1")
    state = bob.wait_for(has_call("ringing"), what="bob rings")
    assert state["screen"][1:3] == ["Incoming call", "Alice"]
    assert state["buttons"]["contact-1"]["led"] == {"color": "green", "pattern": "fast"}
    bob.press("answer")
    for phone in (alice, bob):
        phone.wait_for(has_call("confirmed"), what="confirmed")
    alice.wait_for(screen_has("In call 00:02"), timeout=6, what="2 s of talk")
    alice.press("end")
    for phone in (alice, bob):
        phone.wait_for(no_calls, what="both hung up")
    alice.stop()
    bob.stop()
    assert dominant_frequency(phones.workdir / "bob-speaker.wav") == pytest.approx(440, rel=0.01)
    assert dominant_frequency(phones.workdir / "alice-speaker.wav") == pytest.approx(660, rel=0.01)


def test_unknown_user_shows_404(kamailio: Kamailio, phones: PhoneFactory) -> None:
    alice = phones.start(
        "alice", account(kamailio, "alice"), [("Nobody", f"sip:nobody@{kamailio.domain}")]
    )
    alice.wait_for(registered)
    alice.press("contact-1")
    state = alice.wait_for(no_calls, what="call refused")
    assert state["screen"][1] == "404 Not Found"


def test_busy_callee_over_tcp(kamailio: Kamailio, phones: PhoneFactory) -> None:
    alice = phones.start("alice", account(kamailio, "alice", "tcp"), [("Bob", kamailio.uri("bob"))])
    bob = phones.start("bob", account(kamailio, "bob", "tcp"), [("Alice", kamailio.uri("alice"))])
    carol = phones.start("carol", account(kamailio, "carol", "tcp"), [("Bob", kamailio.uri("bob"))])
    for phone in (alice, bob, carol):
        phone.wait_for(registered)
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"))
    bob.press("contact-1")
    alice.wait_for(has_call("confirmed"))
    carol.press("contact-1")
    assert carol.wait_for(no_calls, what="busy")["screen"][1] == "486 Busy Here"
    alice.press("contact-1")  # pressing the callee's button again hangs up
    bob.wait_for(no_calls)


def test_phone_unregisters_when_it_stops(kamailio: Kamailio, phones: PhoneFactory) -> None:
    alice = phones.start("alice", account(kamailio, "alice"), [("Bob", kamailio.uri("bob"))])
    bob = phones.start("bob", account(kamailio, "bob"), [])
    alice.wait_for(registered)
    bob.wait_for(registered)
    assert bob.stop() == 0
    alice.press("contact-1")
    state = alice.wait_for(no_calls, what="bob is gone")
    assert state["screen"][1] == "404 Not Found"  # no binding left in Kamailio's location table


def test_registrar_down_at_start_then_up(
    make_kamailio: Callable[..., Kamailio], phones: PhoneFactory
) -> None:
    server = make_kamailio()
    server.stop()  # ports are known, nobody listens
    alice = phones.start("alice", account(server, "alice", "tcp"), [])
    state = alice.wait_for(screen_has("reg failed"), what="registration fails")
    assert not state["registered"]
    server.restart()
    state = alice.wait_for(registered, timeout=15, what="registered once the server is up")
    assert state["screen"][0] == "alice registered"


def test_wrong_password_is_shown(kamailio: Kamailio, phones: PhoneFactory) -> None:
    creds = account(kamailio, "alice") | {"password": "not-the-password"}
    alice = phones.start("alice", creds, [])
    state = alice.wait_for(screen_has("reg failed"), what="registration refused")
    assert state["screen"][0] in {"alice reg failed 401", "alice reg failed 403"}
    assert "not-the-password" not in alice.log_tail(200)


def test_registers_and_calls_over_tls(
    make_kamailio: Callable[..., Kamailio], phones: PhoneFactory
) -> None:
    server = make_kamailio(tls=True)
    tls_account = {
        "uri": server.uri("alice"),
        "password": server.users["alice"],
        "registrar": f"sip:127.0.0.1:{server.tls_port};transport=tls",
        "transport": "tls",
        "tls_ca_file": str(server.tls_certificate),  # the server's certificate is checked
    }
    alice = phones.start("alice", tls_account, [("Bob", server.uri("bob"))])
    bob = phones.start("bob", account(server, "bob"), [("Alice", server.uri("alice"))])
    alice.wait_for(registered, what="registered over TLS")
    bob.wait_for(registered)
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"))
    bob.press("answer")
    alice.wait_for(has_call("confirmed"))
    alice.press("end")
    bob.wait_for(no_calls)
    assert "SIP listening on tls" in alice.log_tail(200)


def test_tls_server_with_an_untrusted_certificate_is_refused(
    make_kamailio: Callable[..., Kamailio], phones: PhoneFactory, tmp_path: Path
) -> None:
    server = make_kamailio(tls=True)
    other_ca = tmp_path / "other-ca.pem"
    self_signed_certificate(tmp_path / "k.pem", other_ca, "someone else")
    alice = phones.start(
        "alice",
        {
            "uri": server.uri("alice"),
            "password": server.users["alice"],
            "registrar": f"sip:127.0.0.1:{server.tls_port};transport=tls",
            "transport": "tls",
            "tls_ca_file": str(other_ca),
        },
        [],
    )
    state = alice.wait_for(screen_has("reg failed"), what="registration refused")
    assert not state["registered"]
    assert "certificate verification error" in alice.log_tail(200)
