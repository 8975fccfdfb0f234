"""A phone stops with status 0 on SIGTERM, whatever calls it has seen.

Two phones in direct mode, each a real child process; `RemotePhone.stop`
raises `PhoneExitError` unless the phone exits with status 0. (A callee that
had answered or refused a call used to abort at exit: its pjsua2 `Call` was
kept alive by the no-answer timer and deleted after `libDestroy`.) The ALSA
variant of these scenarios is in tests/audio/test_alsa_clean_stop.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from phone.remote import RemotePhone
from tests.peers.ports import free_port
from tests.phones import PhoneFactory, has_call, no_calls, phones

__all__ = ["phones", "SCENARIOS", "start_pair", "stop_both"]


def start_pair(phones: PhoneFactory, **kwargs: Any) -> tuple[RemotePhone, RemotePhone]:
    """alice and bob, each with the other on contact-1 (`kwargs` go to both)."""
    a_port, b_port = free_port(), free_port()
    alice, _ = phones.direct("alice", [("Bob", f"sip:bob@127.0.0.1:{b_port}")], a_port, **kwargs)
    bob, _ = phones.direct("bob", [("Alice", f"sip:alice@127.0.0.1:{a_port}")], b_port, **kwargs)
    return alice, bob


def ring(caller: RemotePhone, callee: RemotePhone) -> None:
    caller.press("contact-1")
    callee.wait_for(has_call("ringing"), what=f"{callee.name} rings")


def answered(caller: RemotePhone, callee: RemotePhone) -> None:
    ring(caller, callee)
    callee.press("answer")
    for phone in (caller, callee):
        phone.wait_for(has_call("confirmed"), what="confirmed")


def call_out_answered(alice: RemotePhone, bob: RemotePhone) -> None:
    answered(alice, bob)
    bob.press("end")
    alice.wait_for(no_calls, what="hung up")


def call_in_answered(alice: RemotePhone, bob: RemotePhone) -> None:
    answered(bob, alice)
    bob.press("end")
    alice.wait_for(no_calls, what="hung up")


def rejected(alice: RemotePhone, bob: RemotePhone) -> None:
    ring(alice, bob)
    bob.press("end")
    assert alice.wait_for(no_calls, what="refused")["screen"][1] == "486 Busy Here"


def cancelled(alice: RemotePhone, bob: RemotePhone) -> None:
    ring(alice, bob)
    alice.press("contact-1")
    assert bob.wait_for(no_calls, what="cancelled")["screen"][1] == "Missed call"


def during_call_out(alice: RemotePhone, bob: RemotePhone) -> None:
    answered(alice, bob)


def during_call_in(alice: RemotePhone, bob: RemotePhone) -> None:
    answered(bob, alice)


SCENARIOS: dict[str, Callable[[RemotePhone, RemotePhone], None]] = {
    "call out, answered": call_out_answered,
    "call in, answered": call_in_answered,
    "rejected": rejected,
    "cancelled": cancelled,
    "during a call out": during_call_out,
    "during a call in": during_call_in,
    "while ringing": ring,
}


def stop_both(alice: RemotePhone, bob: RemotePhone) -> None:
    """Stop alice, then bob: `stop` raises unless each exits with status 0."""
    assert alice.stop() == 0
    assert bob.stop() == 0


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_both_phones_stop_cleanly(phones: PhoneFactory, scenario: str) -> None:
    alice, bob = start_pair(phones, mic=phones.tone("both", 440))
    SCENARIOS[scenario](alice, bob)
    stop_both(alice, bob)
    for phone in (alice, bob):
        assert "Traceback" not in phone.log_path.read_text(), phone.log_tail()
