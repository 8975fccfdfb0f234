"""An RLS list whose full state is too long for pjsip's receive buffer, against a stock
Kamailio (no `max_notify_body_length`): the phone falls back to one
subscription per contact, says so, and returns to the list once it fits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from phone.payloads import pidf
from phone.sip.rawsip import RawSip
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, account, phones
from tests.presence.test_presence_kamailio import GREEN, led, screen_has
from tests.sip.kamailio_client import KamailioClient

__all__ = ["phones"]

pytestmark = [pytest.mark.kamailio, pytest.mark.slow]

WATCHED = ("bob", "carol")
# A PIDF is about 1.2 kB more than its note: with notes this much under half the
# receive buffer each PUBLISH fits, and the list's NOTIFY with two of them does not.
UNDER_HALF_ROOM = 1000
RETRY_S = 5


@pytest.fixture
def client(
    raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any, make_kamailio: Callable[..., Kamailio]
) -> Iterator[KamailioClient]:
    server = make_kamailio()
    server.allow_watchers(*WATCHED)
    c = KamailioClient(pj_endpoint, raw_sip, sip_transports.udp_port, server)
    yield c
    c.close()


def publish_note(client: KamailioClient, user: str, note: str) -> None:
    uri = client.server.uri(user)
    body = pidf.build_user_presence(uri, pidf.BasicStatus.OPEN, note=note)
    client.publish(user, "presence", pidf.CONTENT_TYPE, body.decode())


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_list_too_long_falls_back_then_returns(
    client: KamailioClient, raw_sip: RawSip, phones: PhoneFactory, transport: str
) -> None:
    """Over UDP the NOTIFY arrives cut short, over TCP pjsip drops it whole. The
    buffer is the one the layout self-test measured (4000 bytes in the wheel,
    16000 on the SD image): the phones run the same pjsua2."""
    room = raw_sip.offsets.rx_packet_room
    assert room is not None, "the layout self-test did not measure the receive buffer"
    server = client.server
    for user in WATCHED:
        publish_note(client, user, "x" * (room // 2 - UNDER_HALF_ROOM))
    buddies = server.put_buddy_list(WATCHED)
    alice = phones.start(
        "alice",
        account(server, "alice", transport),
        [(user.title(), server.uri(user)) for user in WATCHED],
        plugins={"presence": {"rls_uri": buddies, "rls_retry": RETRY_S}},
    )
    alice.wait_for(led("contact-1", GREEN), timeout=20, what="bob, watched on his own")
    alice.wait_for(led("contact-2", GREEN), timeout=5, what="carol, watched on her own")
    alice.wait_for(screen_has("RLS!"), what="the fallback indicator")
    log = alice.log_path.read_text()

    for user in WATCHED:  # the list fits again: its next try delivers
        publish_note(client, user, "short")
    alice.wait_for(
        lambda s: not screen_has("RLS!")(s), timeout=RETRY_S * 4, what="back on the list"
    )
    log = alice.log_path.read_text()
    if transport == "tcp":
        assert "longer than pjsip's receive buffer dropped" in log
        assert "connection closed" in log
    assert log.count("one subscription per contact") == 1, "the fallback is said once"
    assert "delivers again, one subscription for all" in log
    assert alice.state()["buttons"]["contact-1"]["led"] == GREEN
    assert alice.state()["buttons"]["contact-2"]["led"] == GREEN
