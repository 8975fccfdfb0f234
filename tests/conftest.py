"""Shared fixtures. Peers (Kamailio, baresip, PulseAudio) live in tests/peers/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.endpoint import poll_mode_endpoint
from tests.peers.baresip import APT_LINE as BARESIP_APT_LINE
from tests.peers.baresip import Baresip
from tests.peers.kamailio import APT_LINE as KAMAILIO_APT_LINE
from tests.peers.kamailio import Kamailio, kamailio_binary


@pytest.fixture(scope="session")
def pj_endpoint() -> Iterator[object]:
    """The one pjsua2 Endpoint a test process may have (pjsua is a singleton).

    Poll mode (no worker threads), null sound device, no transports: a test adds
    the transports it needs (port 0 on 127.0.0.1) and pumps with
    `ep.libHandleEvents(ms)`. Tests that run whole phones start them as
    subprocesses instead.
    """
    pj = pytest.importorskip("pjsua2")
    ep = poll_mode_endpoint(pj)
    yield ep
    ep.libDestroy()


# -- Peers: Kamailio (registrar, presence, RLS, XCAP, MSRP relay) and baresip --
# A missing peer skips its tests on a developer's machine, but fails them in CI
# (CI set), so a broken install can never turn the suite green.


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


@pytest.fixture
def make_kamailio() -> Iterator[Callable[..., Kamailio]]:
    """A factory of private, started Kamailios (same arguments as `Kamailio`), for
    tests that restart the server or need extra users; all are stopped at teardown."""
    _require_kamailio()
    servers: list[Kamailio] = []

    def make(*args: Any, **kwargs: Any) -> Kamailio:
        server = Kamailio(*args, **kwargs)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def baresip() -> Iterator[Callable[..., Baresip]]:
    """A factory of started baresip user agents (same arguments as `Baresip`);
    all are stopped at teardown."""
    if shutil.which("baresip") is None:
        _peer_missing(f"baresip is not installed; as root: {BARESIP_APT_LINE}")
    agents: list[Baresip] = []

    def make(*args: Any, **kwargs: Any) -> Baresip:
        agent = Baresip(*args, **kwargs)
        agents.append(agent)
        agent.start()
        return agent

    yield make
    for agent in agents:
        agent.close()
