"""Fixtures for the SIP layer: transports on loopback and the self-tested request hook."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from phone.sip.layout import self_test
from phone.sip.rawsip import RawSip


@dataclass
class SipTransports:
    udp_port: int
    tcp_port: int
    ids: tuple[int, int]


@pytest.fixture(scope="session")
def sip_transports(pj_endpoint: Any) -> Iterator[SipTransports]:
    import pjsua2 as pj

    ids = []
    ports = []
    for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
        config = pj.TransportConfig()
        config.port = 0
        config.boundAddress = "127.0.0.1"
        transport_id = pj_endpoint.transportCreate(kind, config)
        ids.append(transport_id)
        ports.append(int(pj_endpoint.transportGetInfo(transport_id).localName.rpartition(":")[2]))
    yield SipTransports(ports[0], ports[1], (ids[0], ids[1]))
    for transport_id in ids:
        pj_endpoint.transportClose(transport_id)


@pytest.fixture(scope="session")
def raw_sip(pj_endpoint: Any, sip_transports: SipTransports) -> Iterator[RawSip]:
    hook = RawSip(pj_endpoint)
    self_test(hook)
    yield hook
    hook.close()
