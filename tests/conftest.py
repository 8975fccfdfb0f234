"""Shared fixtures. Peers (Kamailio, baresip, PulseAudio) live in tests/peers/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def pj_endpoint() -> Iterator[object]:
    """The one pjsua2 Endpoint a test process may have (pjsua is a singleton).

    Poll mode (no worker threads), null sound device, no transports: a test adds
    the transports it needs (port 0 on 127.0.0.1) and pumps with
    `ep.libHandleEvents(ms)`. Tests that run whole phones start them as
    subprocesses instead.
    """
    pj = pytest.importorskip("pjsua2")
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    ep.libInit(cfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    yield ep
    ep.libDestroy()
