"""Diagnostics: `phone status` of a registered phone, and a debug run with the SIP
trace that never logs a credential."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from phone.remote import RemotePhone
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, account, phones, render_config, ring_then_reject

__all__ = ["phones"]


def presence_of(target: str) -> Any:
    def check(state: dict[str, Any]) -> bool:
        return any(
            s["event"] == "presence" and s["target"] == target and s["state"] == "active"
            for s in state["subscriptions"]
        )

    return check


def start_traced(phones: PhoneFactory, name: str, kamailio: Kamailio, peer: str) -> RemotePhone:
    """A registered phone at debug level with `--sip-trace`, watching `peer`'s presence."""
    config = render_config(
        account(kamailio, name), [(peer.title(), kamailio.uri(peer))], phones.workdir, name
    )
    phone = RemotePhone(
        name, config, phones.workdir, log_level="DEBUG", run_args=("--sip-trace",)
    ).start()
    phones.phones.append(phone)
    return phone


@pytest.mark.kamailio
def test_status_and_a_traced_run_without_credentials(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    kamailio.allow_watchers("alice", "bob")
    alice = start_traced(phones, "alice", kamailio, "bob")
    bob = start_traced(phones, "bob", kamailio, "alice")
    for phone, peer in ((alice, "bob"), (bob, "alice")):
        phone.wait_for(presence_of(kamailio.uri(peer)), what=f"{peer}'s presence active")

    status = subprocess.run(
        [sys.executable, "-m", "phone", "status", "--control", f"unix:{alice.socket}"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert status.returncode == 0, status.stderr
    text = status.stdout
    assert f"registered with {kamailio.registrar_uri}, last answer 200 OK" in text
    assert re.search(rf"presence +{re.escape(kamailio.uri('bob'))}  active", text), text
    assert re.search(r"^uptime +\d\d:\d\d:\d\d$", text, re.MULTILINE), text
    assert re.search(r"^  presence +loaded$", text, re.MULTILINE), text
    assert "sound          no ALSA devices" in text
    assert "refused        0 not from the proxy" in text

    # A call through Kamailio: the INVITE is challenged (Proxy-Authorization).
    ring_then_reject(alice, bob)
    alice.stop()
    bob.stop()

    for name in ("alice", "bob"):
        log = (phones.workdir / f"{name}.log").read_text()
        password = kamailio.users[name]
        ha1 = hashlib.md5(f"{name}:{kamailio.domain}:{password}".encode()).hexdigest()
        # The trace has the messages, their credentials masked...
        assert "REGISTER sip:" in log and "SUBSCRIBE sip:" in log and "INVITE sip:" in log
        masked = re.findall(r"^(?:Proxy-)?Authorization: Digest .*$", log, re.MULTILINE)
        assert masked and all(line.endswith("<masked>") for line in masked), masked
        assert any(line.startswith("Proxy-Authorization") for line in masked)
        # ... and nothing anywhere that proves knowing the password.
        assert password not in log
        assert ha1 not in log
        assert not re.search(r"\b(response|cnonce)\s*=", log, re.IGNORECASE)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ([], "give --control, or set $SIMPLEPHONE_CONTROL"),
        (["--control", "unix:/nonexistent/phone.sock"], "unix:/nonexistent/phone.sock: "),
        (["--control", "udp:1.2.3.4"], "control address must be tcp:HOST:PORT or unix:PATH"),
    ],
)
def test_status_without_a_phone_says_why(args: list[str], error: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SIMPLEPHONE_CONTROL"}
    result = subprocess.run(
        [sys.executable, "-m", "phone", "status", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=env,
    )
    assert result.returncode == 2
    assert error in result.stderr
