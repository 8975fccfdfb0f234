"""The chat plugin against a Blink-style peer through Kamailio: a chat-only
INVITE, CPIM text over MSRP on the screen, unread on the LED, a canned reply
back on the session; the same through Kamailio's MSRP relay."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from phone.msrp.tls import TlsSettings
from phone.msrp.uri import MsrpUri
from phone.payloads import iscomposing
from phone.remote import RemotePhone
from phone.sip.sdp import find_message
from tests.chat.blink_peer import BlinkPeer
from tests.msrp.conftest import make_certificate
from tests.peers.kamailio import LISTEN_IP, Kamailio
from tests.phones import PhoneFactory, phones
from tests.test_registration import account, registered

__all__ = ["phones"]

pytestmark = pytest.mark.kamailio

UNREAD = {"color": "amber", "pattern": "wink"}  # no presence shown: the mark's own colour


def start_bob(kamailio: Kamailio, phones: PhoneFactory, **chat: Any) -> RemotePhone:
    bob = phones.start(
        "bob",
        account(kamailio, "bob"),
        [("Alice", kamailio.uri("alice"))],
        plugins={"chat": chat, "presence": {"enabled": False}},
    )
    bob.wait_for(registered, what="bob registered")
    return bob


def logged(phone: RemotePhone, text: str) -> Callable[[dict[str, Any]], bool]:
    """`text` is in the phone's log: chat offers wait for the relay's grant, or the
    msrps endpoint, which the phone may get after it registered; until then it
    has no a=path for them and answers 488 (plugins/chat/transport.py)."""
    return lambda _: text in phone.log_tail(200)


def peer(kamailio: Kamailio, relay: bool = False) -> BlinkPeer:
    return BlinkPeer(
        "alice",
        kamailio.users["alice"],
        kamailio.domain,
        (LISTEN_IP, kamailio.sip_port),
        relay=MsrpUri.parse(kamailio.msrp_relay_uri) if relay else None,
    )


def shows(text: str) -> Any:
    return lambda s: any(text in line for line in s["screen"])


def with_alice(
    kamailio: Kamailio,
    phones: PhoneFactory,
    scenario: Callable[[RemotePhone, BlinkPeer], Awaitable[None]],
    relayed: bool = False,
    **chat: Any,
) -> None:
    """Run `scenario` with bob's phone and a started Blink-style alice, both
    through Kamailio's MSRP relay if `relayed`; bob must stop cleanly."""
    if relayed:
        chat["relay"] = kamailio.msrp_relay_uri
    bob = start_bob(kamailio, phones, **chat)
    if relayed:
        bob.wait_for(logged(bob, "Use-Path"), what="bob's relay grant")

    async def run() -> None:
        alice = peer(kamailio, relay=relayed)
        await alice.start()
        try:
            await scenario(bob, alice)
        finally:
            await alice.close()

    asyncio.run(run())
    assert bob.stop() == 0


def bob_fingerprint(data_dir: Path) -> str:
    """The fingerprint of the msrps certificate bob's phone made at its first
    start in `data_dir`, which its SDP answers name (RFC 4572)."""
    ours = data_dir / "plugins" / "chat"
    return str(TlsSettings(ours / "msrps.pem", ours / "msrps.key").fingerprint())


async def wait(phone: RemotePhone, predicate: Any, what: str) -> dict[str, Any]:
    return await asyncio.to_thread(phone.wait_for, predicate, 10.0, what)


async def chat_round_trip(kamailio: Kamailio, bob: RemotePhone, alice: BlinkPeer) -> None:
    await alice.start()
    try:
        call = await alice.chat(kamailio.uri("bob"))
        assert call.status == 200
        found = find_message(call.answer)
        scheme = "msrps" if alice.tls else "msrp"
        assert found is not None and found[1].path[-1].startswith(f"{scheme}://127.0.0.1:")
        await alice.send_text(call, "Lunch at noon?", kamailio.uri("bob"))
        state = await wait(bob, shows("Lunch at noon?"), "the text on bob's screen")
        assert "Alice:" in state["screen"]
        typing = iscomposing.build(iscomposing.IsComposing(iscomposing.ComposingState.ACTIVE))
        await alice.send_text(call, typing.decode(), kamailio.uri("bob"), iscomposing.CONTENT_TYPE)
        state = await wait(bob, shows("Alice: typing…"), "alice is typing")
        assert state["buttons"]["contact-1"]["led"] == UNREAD
        assert "C:1" in state["screen"][-1]
        assert state["messages"][-1]["text"] == "Lunch at noon?"
        assert state["messages"][-1]["read"] is False
        await asyncio.to_thread(bob.press, "page")
        await wait(bob, shows("> On my way"), "the first reply picked")
        await asyncio.to_thread(bob.press, "answer")
        assert await call.inbox.wait_text() == "On my way"
        state = await wait(bob, lambda s: s["messages"][-1]["direction"] == "out", "history")
        assert [m["read"] for m in state["messages"]] == [True, True]
        assert state["buttons"]["contact-1"]["led"] != UNREAD
        await alice.bye(call)
    finally:
        await alice.close()


def test_a_blink_chat_through_kamailio(kamailio: Kamailio, phones: PhoneFactory) -> None:
    bob = start_bob(kamailio, phones)
    asyncio.run(chat_round_trip(kamailio, bob, peer(kamailio)))
    assert bob.stop() == 0


def test_a_blink_chat_through_kamailios_msrp_relay(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    bob = start_bob(kamailio, phones, relay=kamailio.msrp_relay_uri)
    bob.wait_for(logged(bob, "Use-Path"), what="bob's relay grant")
    asyncio.run(chat_round_trip(kamailio, bob, peer(kamailio, relay=True)))
    assert bob.stop() == 0


def test_a_reply_after_the_session_ended_goes_by_invite_else_by_message(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        await alice.register(kamailio.registrar_uri)
        call = await alice.chat(kamailio.uri("bob"))
        await alice.send_text(call, "Are you there?", kamailio.uri("bob"))
        await wait(bob, shows("Are you there?"), "the text on bob's screen")
        await alice.bye(call)  # the session ends while the text is shown
        await asyncio.to_thread(bob.press, "page")
        await asyncio.to_thread(bob.press, "answer")
        taken = await alice.take_chat(accept=True)  # a new chat-only INVITE
        assert taken is not None
        assert await taken.inbox.wait_text() == "On my way"

        # Alice writes again in a new session of hers, and refuses bob's next offer.
        call = await alice.chat(kamailio.uri("bob"))
        await alice.send_text(call, "Now?", kamailio.uri("bob"))
        await wait(bob, shows("Now?"), "the second text")
        await alice.bye(call)
        await asyncio.to_thread(bob.press, "page")
        await asyncio.to_thread(bob.press, "answer")
        assert await alice.take_chat(accept=False) is None  # 488
        message = await alice.take_message()  # the reply as a pager MESSAGE
        assert message.body == b"On my way" and message.content_type == "text/plain"

    with_alice(kamailio, phones, scenario)


def test_a_blink_chat_over_msrps_with_fingerprints(
    kamailio: Kamailio, phones: PhoneFactory, tmp_path: Path
) -> None:
    bob = start_bob(kamailio, phones)
    bob.wait_for(logged(bob, "MSRP listening on msrps://"), what="bob's msrps endpoint")
    alice_tls = make_certificate(tmp_path, "alice")
    alice = BlinkPeer("alice", kamailio.users["alice"], kamailio.domain,
                      (LISTEN_IP, kamailio.sip_port), tls=alice_tls)  # fmt: skip

    async def scenario() -> None:
        await alice.start()
        call = await alice.chat(kamailio.uri("bob"))
        section = next(m for m in call.answer.media if m.kind == "message")
        assert section.protocol == "TCP/TLS/MSRP"
        assert section.attribute("fingerprint") == bob_fingerprint(tmp_path)
        assert call.msrp.connection is not None and call.msrp.connection.secure
        await alice.close()

    asyncio.run(chat_round_trip(kamailio, bob, alice))
    alice = BlinkPeer("alice", kamailio.users["alice"], kamailio.domain,
                      (LISTEN_IP, kamailio.sip_port), tls=alice_tls)  # fmt: skip
    asyncio.run(scenario())
    assert bob.stop() == 0
