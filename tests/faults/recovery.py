"""What the fault tests share: LED and call predicates, RTP flow, recovery times."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from phone.remote import RemotePhone
from tests.phones import call_states

GREEN = {"color": "green", "pattern": "steady"}
RED = {"color": "red", "pattern": "steady"}
RECOVERY_S = 10.0  # issue 15: registered and every subscription live again within 10 s


def leds(**wanted: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """Every named button (contact_1=... for contact-1) shows its LED."""
    return lambda s: all(
        s["buttons"][button.replace("_", "-")]["led"] == led for button, led in wanted.items()
    )


def registered(state: dict[str, Any]) -> bool:
    return bool(state["registered"])


def rtp_rx(phone: RemotePhone) -> int:
    """RTP packets `phone` received in its one call so far."""
    calls = phone.state()["calls"]
    assert call_states({"calls": calls}) == ["confirmed"], calls
    return int(calls[0]["rtp_rx"])


def wait_rtp_flows(phones: tuple[RemotePhone, ...], timeout: float, packets: int = 50) -> float:
    """Wait until each phone has received `packets` more RTP packets (one
    second of 20 ms frames); returns the seconds it took."""
    start = time.monotonic()
    before = {phone.name: rtp_rx(phone) for phone in phones}
    for phone in phones:
        remaining = max(0.1, timeout - (time.monotonic() - start))
        phone.wait_for(
            lambda s, name=phone.name: int(s["calls"][0]["rtp_rx"]) >= before[name] + packets,
            timeout=remaining,
            what=f"{phone.name} receives RTP again",
        )
    return time.monotonic() - start


def report(name: str, seconds: float) -> None:
    """A recovery time, on the test's output (pytest -s, or the failure report)."""
    print(f"recovery: {name}: {seconds:.2f} s")
