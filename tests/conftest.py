"""Shared fixtures. Peers (Kamailio, baresip, PulseAudio) live in tests/peers/."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from phone.sip.rawsip import RawSip
from tests.peers.baresip import APT_LINE as BARESIP_APT_LINE
from tests.peers.baresip import Baresip
from tests.peers.kamailio import APT_LINE as KAMAILIO_APT_LINE
from tests.peers.kamailio import Kamailio, kamailio_binary
from tests.peers.process import PeerProcess, log_marks, logs_since
from tests.sip.stack import destroy_endpoint, loopback_transport, poll_endpoint, request_hook

P = TypeVar("P", bound=PeerProcess)

# The length of each peer's log when a test's call began.
_PEER_LOGS = pytest.StashKey[dict[PeerProcess, int]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Note how long each peer's log is, so a failure shows what was logged during it."""
    item.stash[_PEER_LOGS] = log_marks()
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report carries the tail of what each peer logged meanwhile."""
    report = yield
    if report.when == "call" and report.failed:
        marks: dict[PeerProcess, int] = item.stash.get(_PEER_LOGS, {})
        report.sections.extend(logs_since(marks))
    return report


@pytest.fixture(scope="session")
def pj_endpoint() -> Iterator[object]:
    """The one pjsua2 Endpoint a test process may have (pjsua is a singleton).

    Poll mode (no worker threads), null sound device, no transports: a test adds
    the transports it needs (port 0 on 127.0.0.1) and pumps with
    `ep.libHandleEvents(ms)`. Tests that run whole phones start them as
    subprocesses instead.
    """
    pytest.importorskip("pjsua2")
    ep = poll_endpoint()
    yield ep
    destroy_endpoint(ep)


# -- Peers: Kamailio (registrar, presence, RLS, XCAP, MSRP relay) and baresip --
# A missing peer skips its tests on a developer's machine, but fails them in CI
# (CI set), so a broken install can never turn the suite green.


@dataclass
class SipTransports:
    udp_port: int
    tcp_port: int
    ids: tuple[int, int]


@pytest.fixture(scope="session")
def sip_transports(pj_endpoint: Any) -> Iterator[SipTransports]:
    """UDP and TCP on loopback for the session's endpoint, made once: pjsua
    holds at most 8 transports, so no test directory may make its own."""
    import pjsua2 as pj

    (udp_id, udp_port), (tcp_id, tcp_port) = (
        loopback_transport(pj_endpoint, kind)
        for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP)
    )
    yield SipTransports(udp_port, tcp_port, (udp_id, tcp_id))
    for transport_id in (udp_id, tcp_id):
        pj_endpoint.transportClose(transport_id)


@pytest.fixture(scope="session")
def raw_sip(pj_endpoint: Any, sip_transports: SipTransports) -> Iterator[RawSip]:
    """The phone's self-tested request hook on the session's endpoint."""
    hook = request_hook(pj_endpoint)
    yield hook
    hook.close()


def _peer_missing(message: str) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI: {message}", pytrace=False)
    pytest.skip(message)


def _require_kamailio() -> None:
    if kamailio_binary() is None:
        _peer_missing(f"kamailio is not installed; as root: {KAMAILIO_APT_LINE}")


@pytest.fixture(scope="session")
def kamailio() -> Iterator[Kamailio]:
    """The shared Kamailio (alice, bob, carol) for tests that do not restart it."""
    _require_kamailio()
    with Kamailio() as server:
        yield server


def _started_peers(peer_class: Callable[..., P]) -> Iterator[Callable[..., P]]:
    """A factory of started peers (same arguments as `peer_class`); all are closed,
    and their exit status checked, at teardown."""
    peers: list[P] = []

    def make(*args: Any, **kwargs: Any) -> P:
        peer = peer_class(*args, **kwargs)
        peers.append(peer)
        peer.start()
        return peer

    yield make
    with contextlib.ExitStack() as closing:  # every one, even when one fails
        for peer in peers:
            closing.callback(peer.close)


@pytest.fixture
def make_kamailio() -> Iterator[Callable[..., Kamailio]]:
    """Private Kamailios, for tests that restart the server or need extra users."""
    _require_kamailio()
    yield from _started_peers(Kamailio)


@pytest.fixture
def baresip() -> Iterator[Callable[..., Baresip]]:
    """baresip user agents."""
    if shutil.which("baresip") is None:
        _peer_missing(f"baresip is not installed; as root: {BARESIP_APT_LINE}")
    yield from _started_peers(Baresip)
