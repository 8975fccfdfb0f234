"""Fixtures for the SIP layer: transports on loopback and the self-tested request hook."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from phone.sip.rawsip import RawSip
from tests.sip.stack import loopback_transport, request_hook


@dataclass
class SipTransports:
    udp_port: int
    tcp_port: int
    ids: tuple[int, int]


@pytest.fixture(scope="session")
def sip_transports(pj_endpoint: Any) -> Iterator[SipTransports]:
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
    hook = request_hook(pj_endpoint)
    yield hook
    hook.close()
