"""A chat whose peer moves (RFC 4975 section 8.4): a Blink-style peer re-INVITEs
through Kamailio with a new a=path, as Blink does on another network. The
phone leaves the old connection, sets the session up on the new path (it
connects, or waits, as the answer's a=setup says) and the chat goes on; a
reply picked while the new path is not set up yet waits for it, and one
left unanswered on the old path is sent again on the new; a path nobody
listens on ends the chat, with a note on the screen."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from phone.msrp.message import response_to
from phone.msrp.session import MsrpSession
from phone.msrp.uri import MsrpUri, parse_path
from phone.payloads import cpim
from phone.remote import RemotePhone
from phone.sip.message import SipMessage
from phone.sip.sdp import SessionDescription, SetupRole, find_message
from tests.chat.blink_peer import BlinkPeer, ChatCall
from tests.chat.test_chat_kamailio import bob_fingerprint, logged, shows, wait, with_alice
from tests.msrp.conftest import make_certificate
from tests.msrp.rawpeer import RawPeer, send_frame
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, phones

__all__ = ["phones"]

pytestmark = pytest.mark.kamailio


def answered_setup(response: SipMessage) -> SetupRole | None:
    """The phone's a=setup in its answer to a re-INVITE."""
    found = find_message(SessionDescription.parse(response.body.decode()))
    assert found is not None
    return found[1].setup


async def chatting(bob: RemotePhone, alice: BlinkPeer, kamailio: Kamailio, text: str) -> ChatCall:
    call = await alice.chat(kamailio.uri("bob"))
    await alice.send_text(call, text, kamailio.uri("bob"))
    await wait(bob, shows(text), "the text on bob's screen")
    return call


async def reply_arrives(bob: RemotePhone, call: ChatCall) -> None:
    """Bob picks the first canned reply and sends it: it comes on `call`'s session."""
    await asyncio.to_thread(bob.press, "page")
    await asyncio.to_thread(bob.press, "answer")
    assert await call.inbox.wait_text() == "On my way"


async def chat_goes_on(
    bob: RemotePhone, alice: BlinkPeer, call: ChatCall, to: str, text: str
) -> None:
    """Alice's `text` on `call`'s session shows on bob's screen, and his reply comes back there."""
    await alice.send_text(call, text, to)
    await wait(bob, shows(text), f"{text!r} on bob's screen")
    await reply_arrives(bob, call)


async def left(old: MsrpSession) -> None:
    """The phone closed the old session's connection (RFC 4975 8.4: it may be gone)."""
    async with asyncio.timeout(5):
        while not old.closed:
            await asyncio.sleep(0.05)


def test_the_chat_follows_the_peer_to_its_new_path(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        call = await chatting(bob, alice, kamailio, "Before the move")
        old = call.msrp
        moved = await alice.move(call)  # actpass: the phone connects to the new path
        assert moved.status == 200 and answered_setup(moved) is SetupRole.ACTIVE
        assert call.msrp is not old and call.msrp.connection is not None
        await left(old)
        await alice.send_text(call, "From the train", kamailio.uri("bob"))
        state = await wait(bob, shows("From the train"), "text on the new path")
        assert state["messages"][-1]["text"] == "From the train"

        old = call.msrp
        moved = await alice.move(call, setup="active")  # alice connects: the phone waits
        assert moved.status == 200 and answered_setup(moved) is SetupRole.PASSIVE
        await left(old)
        await chat_goes_on(bob, alice, call, kamailio.uri("bob"), "And off again")
        await alice.bye(call)

    with_alice(kamailio, phones, scenario)


def test_the_chat_follows_the_peer_to_a_new_relay_session(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    """Both sides chat through Kamailio's MSRP relay (RFC 4976); alice comes back
    with a new grant (a new AUTH: a new Use-Path, as after a change of network),
    so her path changes at the relay too: the phone's SENDs follow it there."""
    relay = MsrpUri.parse(kamailio.msrp_relay_uri)

    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        call = await chatting(bob, alice, kamailio, "Via the relay")
        old_path = call.msrp.local_path
        moved = await alice.move(call, relay=relay)
        assert moved.status == 200 and answered_setup(moved) is SetupRole.ACTIVE
        assert call.msrp.local_path != old_path and call.msrp.relay_path
        await chat_goes_on(bob, alice, call, kamailio.uri("bob"), "New grant")
        await alice.bye(call)

    with_alice(kamailio, phones, scenario, relayed=True)


def test_a_chat_the_phone_offered_follows_the_peer_too(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    """Bob's reply after alice's session ended opens a chat of his (his offer said
    actpass); alice then moves: his answer states a role (he connects), not the
    actpass of his offer, and the chat goes on on her new path."""

    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        await alice.register(kamailio.registrar_uri)
        call = await chatting(bob, alice, kamailio, "Call me back")
        await alice.bye(call)
        await asyncio.to_thread(bob.press, "page")
        await asyncio.to_thread(bob.press, "answer")
        taken = await alice.take_chat(accept=True)  # bob's chat-only INVITE
        assert taken is not None and await taken.inbox.wait_text() == "On my way"
        moved = await alice.move(taken)
        assert moved.status == 200 and answered_setup(moved) is SetupRole.ACTIVE
        await chat_goes_on(bob, alice, taken, kamailio.uri("bob"), "Back online")
        await alice.bye(taken)

    with_alice(kamailio, phones, scenario)


def test_a_reply_during_the_move_waits_for_the_new_path(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        call = await chatting(bob, alice, kamailio, "Moving now")
        old_inbox = call.inbox
        moved = await alice.move(call, setup="active", start=False)
        assert moved.status == 200
        await asyncio.to_thread(bob.press, "page")
        await asyncio.to_thread(bob.press, "answer")  # the phone waits for alice's connection
        await wait(bob, shows("Sent:"), "the reply taken")
        await call.msrp.start(active=True, timeout=5)
        assert await call.inbox.wait_text() == "On my way"
        assert old_inbox.texts() == []
        state = await wait(bob, lambda s: s["messages"][-1]["direction"] == "out", "history")
        assert state["messages"][-1]["text"] == "On my way"
        await alice.bye(call)

    with_alice(kamailio, phones, scenario)


def test_a_reply_unanswered_on_the_old_path_is_sent_again_on_the_new(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    """Alice's old side takes bob's reply and never answers it (she is gone): when
    she moves, the phone leaves that connection and sends the reply on the new path."""

    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        call = await alice.chat(kamailio.uri("bob"), setup="active", start=False)
        found = find_message(call.answer)
        assert found is not None and found[1].setup is SetupRole.PASSIVE
        phone_path = parse_path(" ".join(found[1].path))
        host, port, _ = phone_path[-1].authority
        old = await RawPeer.connect(host, port)  # alice's old side, by hand
        to, frm = phone_path, (call.msrp.local_uri,)
        text = cpim.build(cpim.CpimMessage("text/plain", b"Leaving the office"))
        for body, message_id in ((b"", "bind"), (text, "text1")):
            await old.write(send_frame(to, frm, body, message_id=message_id,
                                       content_type=cpim.CONTENT_TYPE if body else None).encode())  # fmt: skip
            assert (await old.next_frame()).status == 200
        await wait(bob, shows("Leaving the office"), "the text on bob's screen")
        await asyncio.to_thread(bob.press, "page")
        await asyncio.to_thread(bob.press, "answer")
        while b"On my way" not in (frame := await old.next_frame()).body:
            await old.write(response_to(frame, 200).encode())  # is-composing: taken
        assert frame.method == "SEND"  # the reply: never answered
        call.msrp.close("left by hand")
        moved = await alice.move(call)
        assert moved.status == 200
        assert await old.closed(timeout=5)
        assert await call.inbox.wait_text() == "On my way"
        old.close()
        await alice.bye(call)

    with_alice(kamailio, phones, scenario)


def test_a_move_to_a_dead_path_ends_the_chat_with_a_note(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        call = await chatting(bob, alice, kamailio, "Going underground")
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        dead = f"msrp://127.0.0.1:{port}/gone;tcp"
        moved = await alice.move(call, setup="passive", path=dead)  # the phone must connect
        assert moved.status == 200 and answered_setup(moved) is SetupRole.ACTIVE
        bye = await alice.receive(lambda m: m.method == "BYE" and m.call_id == call.call_id)
        alice.sip.send(alice.sip.response(bye, 200, "OK"), alice.sip.last_from or alice.proxy)
        await wait(bob, shows("ended: link lost"), "the note on bob's screen")
        assert "no session on its new path" in bob.log_tail(200)

    with_alice(kamailio, phones, scenario)


def test_a_move_to_msrps_answers_in_msrps_and_the_chat_goes_on(
    kamailio: Kamailio, phones: PhoneFactory, tmp_path: Path
) -> None:
    """Alice chats over TCP/MSRP, then re-offers a TCP/TLS/MSRP path (RFC 4975
    section 8.5): the phone answers in that protocol, with a new msrps path of
    its own and its certificate's fingerprint, connects there (checking alice's
    fingerprint), and the chat goes on both ways."""
    alice_tls = make_certificate(tmp_path, "alice")

    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        await wait(bob, logged(bob, "MSRP listening on msrps://"), "bob's msrps endpoint")
        call = await chatting(bob, alice, kamailio, "On plain TCP")
        moved = await alice.move(call, tls=alice_tls)
        assert moved.status == 200 and answered_setup(moved) is SetupRole.ACTIVE
        section = next(m for m in SessionDescription.parse(moved.body.decode()).media
                       if m.kind == "message")  # fmt: skip
        assert section.protocol == "TCP/TLS/MSRP" and section.port != 0
        assert (section.attribute("path") or "").startswith("msrps://")
        assert section.attribute("fingerprint") == bob_fingerprint(tmp_path)
        assert call.msrp.connection is not None and call.msrp.connection.secure
        await chat_goes_on(bob, alice, call, kamailio.uri("bob"), "Now over TLS")
        await alice.bye(call)

    with_alice(kamailio, phones, scenario)


def test_a_move_to_a_protocol_the_phone_lacks_is_declined_and_ends_the_chat(
    kamailio: Kamailio, phones: PhoneFactory, tmp_path: Path
) -> None:
    """Bob chats through Kamailio's MSRP relay, which is plain TCP: alice's
    re-offer in msrps is answered with the line at port 0 (RFC 3264 section 6),
    not in the old protocol, and the phone ends the session, left without a
    stream, with a BYE."""
    alice_tls = make_certificate(tmp_path, "alice")

    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        call = await chatting(bob, alice, kamailio, "Via the relay")
        moved = await alice.move(call, tls=alice_tls, start=False)
        assert moved.status == 200
        answer = SessionDescription.parse(moved.body.decode())
        assert [(m.kind, m.port) for m in answer.media] == [("message", 0)]
        bye = await alice.receive(lambda m: m.method == "BYE" and m.call_id == call.call_id)
        alice.sip.send(alice.sip.response(bye, 200, "OK"), alice.sip.last_from or alice.proxy)
        assert "TCP/TLS/MSRP declined" in bob.log_tail(200)

    with_alice(kamailio, phones, scenario, relayed=True)
