"""Calls by contact button between two phones in direct mode (no registrar)."""

from __future__ import annotations

import pytest

from tests.peers.ports import free_port
from tests.phones import PhoneFactory, dominant_frequency, has_call, no_calls, phones

__all__ = ["phones"]


@pytest.fixture
def pair(phones: PhoneFactory):
    a_port, b_port = free_port(), free_port()
    a_uri, b_uri = f"sip:alice@127.0.0.1:{a_port}", f"sip:bob@127.0.0.1:{b_port}"
    alice, _ = phones.direct("alice", [("Bob", b_uri)], port=a_port, mic=phones.tone("alice", 440))
    bob, _ = phones.direct("bob", [("Alice", a_uri)], port=b_port, mic=phones.tone("bob", 660))
    return alice, bob


def test_press_calls_answer_talk_and_end(pair, phones: PhoneFactory) -> None:
    alice, bob = pair
    assert alice.press("contact-1") == {"ok": True}
    state = bob.wait_for(has_call("ringing"), what="bob rings")
    assert state["screen"][1:3] == ["Incoming call", "Alice"]
    assert state["buttons"]["contact-1"]["led"] == {"color": "green", "pattern": "fast"}
    alice_state = alice.wait_for(has_call("ringing"), what="alice hears ringing")
    assert alice_state["buttons"]["contact-1"]["led"]["pattern"] == "slow"

    bob.press("answer")
    for phone in (alice, bob):
        state = phone.wait_for(has_call("confirmed"), what="confirmed")
        assert state["screen"][2].startswith("In call ")
        assert state["buttons"]["contact-1"]["led"] == {"color": "green", "pattern": "steady"}
    alice.wait_for(lambda s: s["screen"][2] >= "In call 00:02", timeout=5, what="2 s of talk")

    bob.press("end")
    for phone in (alice, bob):
        state = phone.wait_for(no_calls, what="hung up")
        assert state["screen"][1] == "Call ended"
        # The LED goes back to presence, straight from the other phone (direct mode).
        phone.wait_for(
            lambda s: s["buttons"]["contact-1"]["led"] == {"color": "green", "pattern": "steady"},
            what="the other phone available again",
        )
    alice.stop()
    bob.stop()
    assert dominant_frequency(phones.workdir / "bob-speaker.wav") == pytest.approx(440, rel=0.01)
    assert dominant_frequency(phones.workdir / "alice-speaker.wav") == pytest.approx(660, rel=0.01)


def test_pressing_the_contact_again_hangs_up(pair) -> None:
    alice, bob = pair
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"))
    alice.press("contact-1")
    bob.wait_for(no_calls, what="cancelled")
    state = bob.state()
    assert state["screen"][1:3] == ["Missed call", "Alice"]


def test_callee_presses_callers_button_to_answer(pair) -> None:
    alice, bob = pair
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"))
    bob.press("contact-1")
    alice.wait_for(has_call("confirmed"))
    alice.press("end")
    bob.wait_for(no_calls)


def test_end_rejects_with_486_by_default(pair) -> None:
    alice, bob = pair
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"))
    bob.press("end")
    state = alice.wait_for(no_calls, what="rejected")
    assert state["screen"][1] == "486 Busy Here"


def test_reject_code_603_from_config(phones: PhoneFactory) -> None:
    a_port, b_port = free_port(), free_port()
    alice = phones.start(
        "alice",
        {"uri": f"sip:alice@127.0.0.1:{a_port}", "display_name": "Alice Smith"},
        [("Bob", f"sip:bob@127.0.0.1:{b_port}")],
    )
    bob, _ = phones.direct("bob", [], port=b_port, calls={"reject_code": 603})
    alice.press("contact-1")
    state = bob.wait_for(has_call("ringing"))
    assert state["screen"][1:3] == ["Incoming call", "Alice Smith"]  # not a contact: display name
    bob.press("end")
    assert alice.wait_for(no_calls)["screen"][1] == "603 Decline"


def test_caller_without_display_name_is_shown_by_uri(phones: PhoneFactory) -> None:
    b_port = free_port()
    alice, _ = phones.direct("alice", [("Bob", f"sip:bob@127.0.0.1:{b_port}")])
    bob, _ = phones.direct("bob", [], port=b_port)
    alice.press("contact-1")
    state = bob.wait_for(has_call("ringing"))
    assert state["screen"][2] == "alice@127.0.0.1"
    assert state["calls"][0]["remote"] == "sip:alice@127.0.0.1"


def test_second_incoming_call_gets_busy(phones: PhoneFactory) -> None:
    ports = {n: free_port() for n in ("alice", "bob", "carol")}
    uris = {n: f"sip:{n}@127.0.0.1:{p}" for n, p in ports.items()}
    alice, _ = phones.direct("alice", [("Bob", uris["bob"])], port=ports["alice"])
    carol, _ = phones.direct("carol", [("Bob", uris["bob"])], port=ports["carol"])
    bob, _ = phones.direct(
        "bob", [("Alice", uris["alice"]), ("Carol", uris["carol"])], port=ports["bob"]
    )
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"))
    bob.press("answer")
    bob.wait_for(has_call("confirmed"))
    carol.press("contact-1")
    assert carol.wait_for(no_calls, what="carol refused")["screen"][1] == "486 Busy Here"
    assert [(c["remote"], c["state"], c["direction"]) for c in bob.state()["calls"]] == [
        (uris["alice"], "confirmed", "in")
    ]


def test_second_call_rings_when_configured(phones: PhoneFactory) -> None:
    ports = {n: free_port() for n in ("alice", "bob", "carol")}
    uris = {n: f"sip:{n}@127.0.0.1:{p}" for n, p in ports.items()}
    alice, _ = phones.direct("alice", [("Bob", uris["bob"])], port=ports["alice"])
    carol, _ = phones.direct("carol", [("Bob", uris["bob"])], port=ports["carol"])
    bob, _ = phones.direct(
        "bob",
        [("Alice", uris["alice"]), ("Carol", uris["carol"])],
        port=ports["bob"],
        calls={"second_call": "ring"},
    )
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"))
    bob.press("answer")
    bob.wait_for(has_call("confirmed"))
    carol.press("contact-1")
    state = bob.wait_for(
        lambda s: sorted(c["state"] for c in s["calls"]) == ["confirmed", "ringing"]
    )
    assert state["buttons"]["contact-2"]["led"] == {"color": "green", "pattern": "fast"}
    carol.wait_for(has_call("ringing"), what="carol hears ringing")


def test_unreachable_contact_shows_the_failure(phones: PhoneFactory) -> None:
    dead = f"sip:nobody@127.0.0.1:{free_port()};transport=tcp"
    port = free_port()
    alice = phones.start(
        "alice", {"uri": f"sip:alice@127.0.0.1:{port}", "transport": "tcp"}, [("Nobody", dead)]
    )
    alice.press("contact-1")
    state = alice.wait_for(no_calls, timeout=15, what="call fails")
    assert state["screen"][1].split()[0] in {"408", "503"}
