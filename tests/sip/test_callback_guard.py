"""A bug under a pjsua2 callback of the SIP layer (phone/pjsua_callback.py): it
is logged once through logging, nothing is printed to stderr or kept in
`sys.last_traceback`, pjsua gets a safe answer, and the next call works.

The phone's account on the session's endpoint calls itself (direct mode), and
its core raises where each test says, as a bug in the core would.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from phone.calls import CallState, Direction
from phone.sip.account import SipAccount
from phone.sip.admission import MediaSlots
from phone.sip.call import SipCall
from phone.sip.request import ReferProgress
from tests.conftest import SipTransports
from tests.peers.ports import LISTEN_IP
from tests.sip.stack import direct_account


class CoreWithBugs:
    """The core's side of the SIP layer: answers every call; raises once at
    each of `bugs`, named "incoming_call" or "<in|out> <call state>"."""

    def __init__(self) -> None:
        self.bugs: set[str] = set()
        self.incoming: list[SipCall] = []

    def _bug(self, where: str) -> None:
        if where in self.bugs:
            self.bugs.discard(where)
            raise RuntimeError(f"a bug in the core at {where}")

    def registration_changed(self, registered: bool, code: int, reason: str) -> None:
        pass

    def incoming_call(self, call: SipCall) -> None:
        self._bug("incoming_call")
        self.incoming.append(call)
        call.accept()

    def call_changed(self, call: SipCall) -> None:
        direction = "in" if call.info.direction is Direction.IN else "out"
        self._bug(f"{direction} {call.info.state.value}")

    def call_media_ready(self, call: SipCall) -> None:
        pass


@dataclass
class Phone:
    ep: Any
    account: SipAccount
    core: CoreWithBugs
    slots: MediaSlots
    uri: str

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            self.ep.libHandleEvents(10)

    def call_itself(self) -> SipCall:
        return self.account.make_call(self.uri, None)

    def talk_and_hang_up(self) -> None:
        """A call that is answered, confirmed on both sides, and hung up."""
        calls_before = len(self.core.incoming)
        outgoing = self.call_itself()
        self.wait(lambda: outgoing.info.state is CallState.CONFIRMED, "the call answered")
        incoming = self.core.incoming[calls_before]
        self.wait(lambda: incoming.info.state is CallState.CONFIRMED, "the call confirmed")
        outgoing.end()
        self.wait(lambda: not self.account.calls, "both sides hung up")
        assert incoming.info.code == outgoing.info.code == 200


@pytest.fixture
def phone(pj_endpoint: Any, sip_transports: SipTransports) -> Iterator[Phone]:
    config = direct_account("guarded", sip_transports.udp_port)
    core, slots = CoreWithBugs(), MediaSlots()
    account = SipAccount(
        config,
        transport_id=sip_transports.ids[0],
        local_address=LISTEN_IP,
        events=core,
        media_slots=slots,
        on_recovered=lambda: None,
    )
    account.start()
    yield Phone(pj_endpoint, account, core, slots, config.uri)
    account.release()


@pytest.fixture
def no_print(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Fails the test if SWIG printed an exception (`PyErr_Print`: stderr, and
    `sys.last_traceback`, which would keep the callback's frames alive)."""
    monkeypatch.delattr(sys, "last_traceback", raising=False)
    yield
    assert not hasattr(sys, "last_traceback")
    assert "Traceback" not in capfd.readouterr().err


def errors(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """Each ERROR record: its logger, message and exception."""
    return [
        (r.name, r.getMessage(), str(r.exc_info[1]) if r.exc_info else "")
        for r in caplog.records
        if r.levelno >= logging.ERROR
    ]


def test_an_incoming_call_whose_core_failed_is_refused_500_and_the_next_one_works(
    phone: Phone, caplog: pytest.LogCaptureFixture, no_print: None
) -> None:
    phone.core.bugs.add("incoming_call")
    refused = phone.call_itself()
    phone.wait(lambda: refused.info.state is CallState.DISCONNECTED, "the call refused")
    assert refused.info.code == 500
    assert errors(caplog) == [
        (
            "phone.sip.account",
            "SipAccount.onIncomingCall failed",
            "a bug in the core at incoming_call",
        )
    ]
    phone.wait(lambda: not phone.account.calls, "the refused call forgotten")
    phone.talk_and_hang_up()
    assert len(errors(caplog)) == 1


def test_a_call_state_the_core_failed_on_is_logged_and_the_ended_call_still_released(
    phone: Phone, caplog: pytest.LogCaptureFixture, no_print: None
) -> None:
    phone.core.bugs.update({"in confirmed", "in disconnected"})
    phone.talk_and_hang_up()
    incoming = phone.core.incoming[0]
    assert incoming.info.state is CallState.DISCONNECTED
    assert not phone.slots.holds(incoming.sip_call_id)  # forgotten despite the bug
    assert errors(caplog) == [
        ("phone.sip.call", "_PjCall.onCallState failed", "a bug in the core at in confirmed"),
        ("phone.sip.call", "_PjCall.onCallState failed", "a bug in the core at in disconnected"),
    ]
    phone.talk_and_hang_up()
    assert len(errors(caplog)) == 2


def test_a_refer_whose_handling_failed_is_refused_500(
    phone: Phone,
    caplog: pytest.LogCaptureFixture,
    no_print: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def bug(call: SipCall, prm: Any) -> None:
        raise RuntimeError("a bug in the REFER's handling")

    monkeypatch.setattr(SipCall, "transfer_requested", bug)
    outgoing = phone.call_itself()
    phone.wait(lambda: outgoing.info.state is CallState.CONFIRMED, "the call answered")
    progress: list[ReferProgress] = []
    outgoing.transfer(phone.uri, progress.append)
    phone.wait(lambda: bool(progress) and progress[-1].final, "the REFER answered")
    assert progress[-1].status == 500
    assert errors(caplog) == [
        ("phone.sip.call", "_PjCall.onCallTransferRequest failed", "a bug in the REFER's handling")
    ]
    # The call that was referred in goes on, and hangs up as usual.
    outgoing.end()
    phone.wait(lambda: not phone.account.calls, "both sides hung up")
    assert len(phone.core.incoming) == 1
