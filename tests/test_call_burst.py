"""Bursts of calls from anyone on the LAN never take the phone down.

pjsua opens the media sockets of an incoming call before the phone hears of
it, and pjlib aborts when its media ioqueue runs out of keys (closed ones come
back only after 500 ms). Before `phone.sip.admission`, 34 INVITE/CANCEL rounds
at full speed, or 2 INVITEs with 16 audio lines, killed the phone with SIGABRT.
A call the phone cannot take now gets 486 with Retry-After, the burst is
logged once, and the phone stops cleanly (exit status 0) afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from phone.remote import RemotePhone
from phone.sip.admission import MAX_LINES
from tests.call_flood import CallFlood, FloodResult
from tests.phones import PhoneFactory, has_call, no_calls, phones

__all__ = ["phones"]

BURST_START = "too many calls at once"
BURST_OVER = "call burst over"


@pytest.fixture
def bob(phones: PhoneFactory) -> tuple[RemotePhone, str]:
    return phones.direct("bob")


@pytest.fixture
def flood(bob: tuple[RemotePhone, str]) -> Iterator[CallFlood]:
    caller = CallFlood(bob[1])
    yield caller
    caller.close()


def log_lines(phone: RemotePhone, text: str) -> list[str]:
    return [line for line in phone.log_path.read_text().splitlines() if text in line]


def assert_burst_logged_once(phone: RemotePhone, refused: int) -> None:
    """Operators read one line when refusing starts and one when it is over
    (the phone has been stopped: at the latest it says so then)."""
    if refused:
        assert len(log_lines(phone, BURST_START)) == 1
        (over,) = log_lines(phone, BURST_OVER)
        assert f"calls refused: {refused} in" in over
    else:
        assert not log_lines(phone, BURST_START)


def assert_missed_or_refused(result: FloodResult) -> None:
    """Every call was missed (487) or refused with a Retry-After of at least 1 s."""
    assert set(result.finals) <= {486, 487}, result.finals
    assert len(result.told_when) == len(result.retry_after) == result.finals[486]
    assert all(seconds >= 1 for seconds in result.told_when)


@pytest.mark.slow
def test_invite_cancel_rounds_every_110_ms(bob: tuple[RemotePhone, str], flood: CallFlood) -> None:
    phone, _ = bob
    result = flood.run(rounds=70, interval=0.110)
    flood.finish()
    assert result.answered == 70
    assert phone.state()["calls"] == []  # alive and answering
    assert phone.stop() == 0
    assert_missed_or_refused(result)
    assert_burst_logged_once(phone, len(result.told_when))


@pytest.mark.slow
def test_burst_of_200_missed_calls_then_a_real_call(
    phones: PhoneFactory, bob: tuple[RemotePhone, str], flood: CallFlood
) -> None:
    phone, bob_uri = bob
    result = flood.run(rounds=200)
    flood.finish()
    phone.wait_for(no_calls, what="the burst is over")
    assert result.answered == 200
    assert_missed_or_refused(result)

    # A caller that honours Retry-After gets through right after the burst.
    time.sleep(max(result.told_when, default=0))
    alice, _ = phones.direct("alice", [("Bob", bob_uri)])
    alice.press("contact-1")
    phone.wait_for(has_call("ringing"), what="bob rings")
    phone.press("answer")
    alice.wait_for(has_call("confirmed"), what="alice in the call")
    alice.press("end")
    phone.wait_for(no_calls, what="hung up")
    assert alice.stop() == 0
    assert phone.stop() == 0
    assert_burst_logged_once(phone, len(result.told_when))


@pytest.mark.slow
def test_burst_of_calls_refused_486_in_dnd(bob: tuple[RemotePhone, str], flood: CallFlood) -> None:
    phone, _ = bob
    phone.press("dnd")
    result = flood.run(rounds=200, cancel=False)
    flood.finish()
    assert result.finals == {486: 200}  # by the phone (DND), or for lack of room
    assert phone.state()["dnd"]
    assert phone.stop() == 0
    assert_burst_logged_once(phone, len(result.told_when))


def test_offer_with_many_audio_lines_is_refused_while_another_rings(
    bob: tuple[RemotePhone, str],
) -> None:
    """Each audio line takes two sockets: two offers of 16 lines took all 64."""
    phone, bob_uri = bob
    ringing = CallFlood(bob_uri, audio_lines=MAX_LINES)
    second = CallFlood(bob_uri, audio_lines=MAX_LINES)
    try:
        ringing.call(cancel=False)
        phone.wait_for(has_call("ringing"), what="the first call rings")
        second.call(cancel=False)
        refused = second.finish(timeout=5)
        assert refused.finals == {486: 1} and refused.told_when[0] >= 1
        assert phone.state()["calls"][0]["state"] == "ringing"
        phone.press("end")
        assert ringing.finish(timeout=5).finals == {486: 1}
        assert phone.stop() == 0
        assert_burst_logged_once(phone, 1)
    finally:
        ringing.close()
        second.close()
