"""Audio calls with chat (an m=message line next to the audio,
`phone.sip.message_stream`): between two phones, a reply picked on one shows
on the other; with a Blink-style peer, the chat follows the peer's new path."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from phone.demo import free_port
from phone.remote import RemotePhone
from phone.sip.sdp import SessionDescription
from tests.chat.blink_peer import BlinkPeer, ChatCall
from tests.chat.test_chat_kamailio import UNREAD, bob_fingerprint, logged, shows, wait
from tests.chat.test_chat_move import chat_goes_on, left
from tests.msrp.conftest import make_certificate
from tests.phones import PhoneFactory, has_call, phones

__all__ = ["phones"]


def test_a_reply_in_a_call_shows_on_the_other_phone(phones: PhoneFactory) -> None:
    a_port, b_port = free_port(), free_port()
    a_uri, b_uri = f"sip:alice@127.0.0.1:{a_port}", f"sip:bob@127.0.0.1:{b_port}"
    alice, _ = phones.direct("alice", [("Bob", b_uri)], port=a_port)
    bob, _ = phones.direct("bob", [("Alice", a_uri)], port=b_port)
    for phone in (alice, bob):  # before that, a call's message line is declined
        phone.wait_for(logged(phone, "MSRP listening on msrp://"), what="the MSRP endpoint")
    alice.press("contact-1")
    bob.wait_for(has_call("ringing"), what="bob rings")
    bob.press("answer")
    for phone in (alice, bob):
        phone.wait_for(has_call("confirmed"), what="the call is up")
    alice.press("page")  # in a call with chat: the replies to bob
    alice.wait_for(shows("> On my way"), what="the first reply picked")
    alice.press("page")
    alice.wait_for(shows("> Call you later"), what="the second reply picked")
    alice.press("answer")
    state = bob.wait_for(shows("Call you later"), what="alice's reply on bob's screen")
    assert "Alice:" in state["screen"]
    assert state["buttons"]["contact-1"]["led"]["color"] == "green"  # the call's LED wins
    assert state["messages"][-1]["from"] == a_uri and state["messages"][-1]["text"] == (
        "Call you later"
    )
    bob.press("page")  # bob answers on the same stream
    bob.press("answer")
    state = alice.wait_for(shows("On my way"), what="bob's reply on alice's screen")
    assert [m["direction"] for m in state["messages"]] == ["out", "in"]
    assert state["buttons"]["contact-1"]["led"] != UNREAD
    alice.press("end")  # the call's: hung up
    for phone in (alice, bob):
        phone.wait_for(lambda s: not s["calls"], what="the call is over")
    assert alice.stop() == 0
    assert bob.stop() == 0


def in_a_call_with_alice(
    phones: PhoneFactory,
    scenario: Callable[[RemotePhone, BlinkPeer, ChatCall, str], Awaitable[None]],
) -> None:
    """Bob's phone (direct mode, its msrps endpoint up) answers a Blink-style
    alice calling with audio (PCMU to a socket of the test's) and chat; then
    `scenario(bob, alice, call, bob_uri)`. The call must be over and bob stop
    cleanly after it."""
    bob, bob_uri = phones.direct("bob", [("Alice", "sip:alice@127.0.0.1")])
    bob.wait_for(logged(bob, "MSRP listening on msrps://"), what="bob's MSRP endpoints")
    address = bob_uri.rsplit("@", 1)[1].split(":")
    alice = BlinkPeer("alice", "", "127.0.0.1", (address[0], int(address[1])))

    async def answer() -> None:
        await asyncio.to_thread(bob.wait_for, has_call("ringing"), 10.0, "bob rings")
        await asyncio.to_thread(bob.press, "answer")

    async def run() -> None:
        await alice.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
            rtp.bind(("127.0.0.1", 0))
            try:
                call, _ = await asyncio.gather(
                    alice.chat(bob_uri, audio_port=rtp.getsockname()[1]), answer()
                )
                await scenario(bob, alice, call, bob_uri)
            finally:
                await alice.close()

    asyncio.run(run())
    bob.wait_for(lambda s: not s["calls"], what="the call is over")
    assert bob.stop() == 0


async def audio_goes_on(bob: RemotePhone) -> None:
    """The call is still up and the phone still sends its audio."""
    state = await wait(bob, has_call("confirmed"), "the call goes on")
    sent = state["calls"][0]["rtp_tx"]
    await wait(bob, lambda s: s["calls"][0]["rtp_tx"] > sent + 10, "audio after it")


def test_a_calls_chat_follows_the_peer_to_its_new_path(phones: PhoneFactory) -> None:
    """A Blink-style peer calls with audio and chat, then re-INVITEs with another
    MSRP path (RFC 4975 section 8.4): the phone connects there, leaves the old
    connection, and the call's chat goes on both ways; a path nobody listens on
    ends the chat, with a note, and the phone re-INVITEs with the message line at
    port 0 (RFC 3264 section 8.2) so alice ends it too, while the audio goes on."""

    async def scenario(bob: RemotePhone, alice: BlinkPeer, call: ChatCall, bob_uri: str) -> None:
        await alice.send_text(call, "Can you hear me?", bob_uri)
        await wait(bob, shows("Can you hear me?"), "the text in the call")
        old = call.msrp
        moved = await alice.move(call)
        assert moved.status == 200
        answer_sdp = SessionDescription.parse(moved.body.decode())
        assert [m.kind for m in answer_sdp.media] == ["audio", "message"]
        await left(old)  # the phone left the old connection
        await chat_goes_on(bob, alice, call, bob_uri, "Now on the train")
        with socket.socket() as probe:  # then to a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            dead = f"msrp://127.0.0.1:{probe.getsockname()[1]}/gone;tcp"
        moved = await alice.move(call, setup="passive", path=dead)
        assert moved.status == 200
        await wait(bob, shows("ended: link lost"), "the chat's end on the screen")
        # The phone tells alice: its re-offer keeps the audio, the chat at port 0.
        reoffer = await alice.take_reoffer(call)
        assert [(m.kind, m.port == 0) for m in reoffer.media] == [
            ("audio", False), ("message", True)
        ]  # fmt: skip
        await audio_goes_on(bob)
        assert "chat ended, offered with its line at port 0" in bob.log_tail(200)
        await alice.bye(call)

    in_a_call_with_alice(phones, scenario)


def test_a_calls_chat_follows_the_peer_to_msrps_and_ends_when_the_peer_closes_it(
    phones: PhoneFactory, tmp_path: Path
) -> None:
    """A Blink-style peer calls with audio and plain chat, then re-INVITEs its
    chat in TCP/TLS/MSRP (RFC 4975 section 8.5): the phone answers in msrps with
    its fingerprint, connects checking the peer's, and the chat goes on; the
    peer then re-INVITEs with the message line at port 0: the phone's answer
    keeps it at port 0, its chat ends, and the audio goes on."""
    alice_tls = make_certificate(tmp_path, "alice")

    async def scenario(bob: RemotePhone, alice: BlinkPeer, call: ChatCall, bob_uri: str) -> None:
        await alice.send_text(call, "Plain first", bob_uri)
        await wait(bob, shows("Plain first"), "the text in the call")
        moved = await alice.move(call, tls=alice_tls)
        assert moved.status == 200
        section = SessionDescription.parse(moved.body.decode()).media[1]
        assert section.protocol == "TCP/TLS/MSRP"
        assert (section.attribute("path") or "").startswith("msrps://")
        assert section.attribute("fingerprint") == bob_fingerprint(tmp_path)
        assert call.msrp.connection is not None and call.msrp.connection.secure
        await chat_goes_on(bob, alice, call, bob_uri, "Now secure")
        closed = await alice.close_chat(call)
        assert closed.status == 200
        kinds = [(m.kind, m.port == 0) for m in SessionDescription.parse(
            closed.body.decode()).media]  # fmt: skip
        assert kinds == [("audio", False), ("message", True)]
        await wait(bob, logged(bob, "ended by the peer; the call goes on"), "chat over")
        await audio_goes_on(bob)
        await alice.bye(call)

    in_a_call_with_alice(phones, scenario)
