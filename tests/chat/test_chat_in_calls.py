"""Two phones in an audio call with chat (an m=message line next to the
audio, `phone.sip.message_stream`): a reply picked on one shows on the other."""

from __future__ import annotations

from phone.demo import free_port
from tests.chat.test_chat_kamailio import UNREAD, logged, shows
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
