"""An idle phone runs no media clock and polls no RTP; a call starts both, and
they stop again after it (phone/sip/media_poll.py, `close_sound_when_idle`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from phone.remote import RemotePhone
from tests.peers.ports import free_port
from tests.phones import PhoneFactory, has_call, no_calls, phones

__all__ = ["phones"]

SOUND_CLOSE_S = 5.0  # pjsua closes the idle sound device after 1 s; a margin for a loaded machine
QUIET_S = 1.0


def threads(phone: RemotePhone) -> dict[str, int]:
    """The phone's threads by name, with their context switches (summed per name)."""
    assert phone.process is not None
    out: dict[str, int] = {}
    for task in Path(f"/proc/{phone.process.pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text().splitlines()
        except OSError:
            continue
        switches = sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        out[name] = out.get(name, 0) + switches
    return out


def wait_for_threads(phone: RemotePhone, check: Any, what: str) -> dict[str, int]:
    deadline = time.monotonic() + SOUND_CLOSE_S
    while True:
        now = threads(phone)
        if check(now):
            return now
        assert time.monotonic() < deadline, f"{phone.name}: {what}; threads {sorted(now)}"
        time.sleep(0.05)


def rtp_flows(packets: int) -> Any:
    return lambda s: has_call("confirmed")(s) and s["calls"][0]["rtp_rx"] >= packets


def assert_idle(phone: RemotePhone) -> None:
    """No clock, no pjmedia worker, and the RTP thread asleep."""
    before = wait_for_threads(phone, lambda t: "clock" not in t, "the media clock still runs")
    assert "media" not in before  # pjmedia's own worker is stopped at start
    time.sleep(QUIET_S)
    after = threads(phone)
    assert "clock" not in after
    assert after["rtp"] == before["rtp"], "the RTP thread woke on an idle phone"


def test_media_threads_run_only_during_a_call(phones: PhoneFactory) -> None:
    a_port, b_port = free_port(), free_port()
    a_uri, b_uri = f"sip:alice@127.0.0.1:{a_port}", f"sip:bob@127.0.0.1:{b_port}"
    alice, _ = phones.direct("alice", [("Bob", b_uri)], port=a_port, mic=phones.tone("alice", 440))
    bob, _ = phones.direct("bob", [("Alice", a_uri)], port=b_port, mic=phones.tone("bob", 660))
    assert_idle(alice)
    for _ in range(2):  # the sound device closed after the first call opens again
        rtp_before = threads(alice)["rtp"]
        alice.press("contact-1")
        bob.wait_for(has_call("ringing"), what="bob rings")
        bob.press("answer")
        for phone in (alice, bob):
            phone.wait_for(rtp_flows(50), timeout=10, what="a second of RTP received")
        during = threads(alice)
        assert "clock" in during
        assert during["rtp"] > rtp_before
        alice.press("end")
        for phone in (alice, bob):
            phone.wait_for(no_calls, what="hung up")
        assert_idle(alice)
        assert_idle(bob)
    assert alice.stop() == 0
    assert bob.stop() == 0
