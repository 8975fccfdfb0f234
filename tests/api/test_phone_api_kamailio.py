"""`PhoneApi.send_message` and `receive_messages` between two phones registered
with Kamailio: the MESSAGE is challenged (407) and sent again with the
account's digest, routed to bob's phone, and taken by bob's plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, install_plugin, phones
from tests.test_registration import account, registered

__all__ = ["phones"]

pytestmark = pytest.mark.kamailio

PAGER = """
import asyncio

from phone.api import PhoneApi, SipMessage
from phone.hookspecs import hookimpl

TASKS = set()


@hookimpl
def phone_started(phone: PhoneApi) -> None:
    def received(message: SipMessage) -> int:
        sender = phone.find_contact(message.from_.uri)
        phone.show_message([sender.name if sender else "?", message.body.decode()], 60.0)
        return 200

    phone.receive_messages(received)


@hookimpl
def button_pressed(phone: PhoneApi, button: str, long_press: bool) -> bool | None:
    if button != "page" or not long_press:
        return None

    async def send() -> None:
        response = await phone.send_message(phone.contacts()[0].uri, b"Lunch?")
        phone.show_message([f"sent: {response.status if response else None}"], 60.0)

    task = asyncio.get_running_loop().create_task(send())
    TASKS.add(task)
    task.add_done_callback(TASKS.discard)
    return True
"""


def test_a_message_goes_through_kamailio_with_digest(
    kamailio: Kamailio, phones: PhoneFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, "pager", "pager_plugin", PAGER)
    monkeypatch.setenv("PYTHONPATH", str(site))
    alice = phones.start("alice", account(kamailio, "alice"), [("Bob", kamailio.uri("bob"))])
    bob = phones.start("bob", account(kamailio, "bob"), [("Alice", kamailio.uri("alice"))])
    for phone in (alice, bob):
        phone.wait_for(registered, what="registered")

    alice.press("page", hold_ms=1200)
    state = bob.wait_for(lambda s: s["screen"][1:3] == ["Alice", "Lunch?"], what="bob reads it")
    assert not state["calls"]
    alice.wait_for(lambda s: s["screen"][1] == "sent: 200", what="the 200 came back")
    assert alice.stop() == 0
    assert bob.stop() == 0
