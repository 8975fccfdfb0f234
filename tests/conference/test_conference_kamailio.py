"""The conference plugin against a real focus (phone/demo_focus.py) through
Kamailio: phones join rooms with one press, see the roster, add and remove
people by REFER, make a one-to-one call into a room, see baresip hold the room,
and survive a focus that vanishes or sends hostile conference-info."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phone.demo_focus import Focus, focus_users
from phone.remote import RemotePhone
from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, no_calls, phones
from tests.test_registration import account, registered, screen_has

__all__ = ["phones"]

pytestmark = pytest.mark.kamailio

ROOMS = {"team": "Team meeting"}
# The README's pictures of the conference screens, written by these tests so
# they show what the phone really draws.
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "conference"


def screenshot(phone: RemotePhone, name: str) -> None:
    """The display as a PNG in the answer (no screenshot_dir needed), kept in SCREENS."""
    answer = phone.request(cmd="screenshot")
    assert answer["ok"] is True, answer
    SCREENS.mkdir(parents=True, exist_ok=True)
    (SCREENS / f"{name}.png").write_bytes(base64.b64decode(answer["png"]))


@pytest.fixture
def server(make_kamailio: Callable[..., Kamailio]) -> Kamailio:
    return make_kamailio(extra_users={**focus_users(ROOMS), "dave": "davepw"})


@pytest.fixture
def focus(server: Kamailio) -> Iterator[Focus]:
    focus = Focus(server, ROOMS).start()
    yield focus
    focus.stop()


def start_phone(
    phones: PhoneFactory, server: Kamailio, user: str, contacts: list[str], **settings: Any
) -> RemotePhone:
    """A phone with the Team room on its first button and `contacts` after it."""
    plugin = {
        "rooms": [{"name": "Team", "uri": server.uri("team")}],
        "factory": server.uri("conference"),
        **settings,
    }
    phone = phones.start(
        user,
        account(server, user),
        [(name.capitalize(), server.uri(name)) for name in contacts],
        buttons=4,
        plugins={"conference": plugin},
    )
    phone.wait_for(registered, what=f"{user} registered")
    return phone


def in_room(count: int) -> Callable[[dict[str, Any]], bool]:
    def check(state: dict[str, Any]) -> bool:
        room = state.get("conference")
        return room is not None and room["count"] == count

    return check


def live_conference(state: dict[str, Any]) -> bool:
    """A conference subscription that is not over yet."""
    return any(
        s["event"] == "conference" and s["state"] != "terminated" for s in state["subscriptions"]
    )


def names(state: dict[str, Any]) -> list[str]:
    return [p["uri"] for p in state["conference"]["participants"]]


def test_three_phones_and_baresip_join_and_see_the_roster(
    server: Kamailio, focus: Focus, phones: PhoneFactory, baresip: Callable[..., Baresip]
) -> None:
    people = [
        start_phone(phones, server, user, contacts)
        for user, contacts in (("alice", ["bob", "carol"]), ("bob", []), ("carol", []))
    ]
    for count, phone in enumerate(people, start=1):
        phone.press("contact-1")
        phone.wait_for(in_room(count), what=f"roster of {count}")
    alice = people[0]
    state = alice.wait_for(screen_has("Team meeting (3)"), what="alice's screen")
    screenshot(alice, "roster")
    assert names(state) == [server.uri(u) for u in ("alice", "bob", "carol")]
    assert state["conference"]["subject"] == "Team meeting"
    assert {p["status"] for p in state["conference"]["participants"]} == {"connected"}

    dave = baresip("dave", server)
    dave.wait_registered()
    dave.dial(server.uri("team"))
    alice.wait_for(screen_has("+ dave"), what="dave's arrival line")
    screenshot(alice, "joined")
    state = alice.wait_for(in_room(4), what="baresip in the roster")
    assert server.uri("dave") in names(state)
    assert focus.roster("team")[-1] == server.uri("dave")
    # The participants scroll: two rows under the room's line.
    alice.press("volume_down")
    alice.press("volume_down")
    alice.wait_for(lambda s: s["screen"][2:4] == ["Carol", "dave"], what="scrolled to the end")
    screenshot(alice, "scrolled")

    people[1].press("end")
    state = alice.wait_for(in_room(3), what="bob left")
    # Leaving is a BYE and the end of the conference subscription (Expires: 0).
    people[1].wait_for(
        lambda s: s["conference"] is None and no_calls(s) and not live_conference(s),
        what="bob out, his conference subscription ended",
    )
    for phone in people:
        assert phone.stop() == 0


def test_adding_a_contact_rings_their_phone_and_removing_them(
    server: Kamailio, focus: Focus, phones: PhoneFactory
) -> None:
    alice = start_phone(phones, server, "alice", ["bob"])
    bob = start_phone(phones, server, "bob", [])
    alice.press("contact-1")
    alice.wait_for(in_room(1), what="alice in the room")

    alice.press("contact-2")  # Bob, not in the room: REFER method=INVITE
    bob.wait_for(screen_has("Conference: Team"), what="bob's phone rings")
    screenshot(bob, "incoming")
    alice.wait_for(
        screen_has("Inviting Bob\N{HORIZONTAL ELLIPSIS} 180"), what="the REFER's progress"
    )
    screenshot(alice, "inviting")
    bob.press("answer")
    state = alice.wait_for(in_room(2), what="bob in the roster")
    assert names(state) == [server.uri("alice"), server.uri("bob")]
    bob.wait_for(in_room(2), what="bob sees the roster")

    alice.press("contact-2", hold_ms=1200)  # a long press, shorter than remove_hold_ms
    alice.wait_for(screen_has("hold 2 s to remove"), what="the hint")
    alice.wait_for(lambda _: "not removing" in alice.log_tail(50), what="the hold judged too short")
    assert alice.state()["conference"]["count"] == 2
    assert focus.roster("team") == [server.uri("alice"), server.uri("bob")]
    alice.press("contact-2", hold_ms=2300)  # held past remove_hold_ms: REFER method=BYE
    alice.wait_for(in_room(1), what="bob removed")
    bob.wait_for(lambda s: s["conference"] is None and no_calls(s), what="bob's call ended")
    assert focus.roster("team") == [server.uri("alice")]
    assert alice.stop() == 0
    assert bob.stop() == 0


def test_a_focus_that_forbids_removal_shows_not_allowed(
    server: Kamailio, phones: PhoneFactory
) -> None:
    focus = Focus(server, ROOMS, allow_removal=False).start()
    try:
        alice = start_phone(phones, server, "alice", ["bob"])
        bob = start_phone(phones, server, "bob", [])
        bob.press("contact-1")
        bob.wait_for(in_room(1), what="bob in the room")
        alice.press("contact-1")
        alice.wait_for(in_room(2), what="alice in the room")
        alice.press("contact-2", hold_ms=2300)
        alice.wait_for(screen_has("not allowed"), what="403 shown")
        screenshot(alice, "not-allowed")
        assert focus.roster("team") == [server.uri("bob"), server.uri("alice")]
        assert alice.stop() == 0
        assert bob.stop() == 0
    finally:
        focus.stop()


def test_room_chat_reaches_the_other_phones_with_the_sender(
    server: Kamailio, focus: Focus, phones: PhoneFactory
) -> None:
    """The room INVITE carries chat (the chat plugin is on): a reply picked on
    one phone reaches the others through the focus, under the room's name
    with who wrote it (CPIM From)."""
    people = [
        start_phone(phones, server, user, contacts)
        for user, contacts in (("alice", ["bob"]), ("bob", []), ("carol", []))
    ]
    for count, phone in enumerate(people, start=1):
        phone.press("contact-1")
        phone.wait_for(in_room(count), what=f"roster of {count}")
    alice, bob, carol = people
    for phone in people:  # the "+ carol" line gone: the room's chat comes next
        phone.wait_for(screen_has("Team meeting (3)"), what="the roster")
    alice.press("page")  # in a call with chat: the canned replies, to the room
    alice.wait_for(screen_has("> On my way"), what="a reply picked")
    alice.press("answer")
    for phone in (bob, carol):
        state = phone.wait_for(screen_has("alice: On my way"), what="alice's text in the room")
        assert state["screen"][1] == "Team:"
        assert state["messages"][-1]["from"] == server.uri("alice")
        assert state["messages"][-1]["text"] == "On my way"
    screenshot(bob, "chat")
    carol.press("page")
    carol.wait_for(screen_has("> On my way"), what="carol picks a reply")
    carol.press("page")
    carol.press("answer")
    for phone in (alice, bob):
        phone.wait_for(screen_has("Call you later"), what="carol's text in the room")
    assert alice.wait_for(screen_has("carol: Call you later"), what="alice sees carol")
    assert focus.relayed == [
        (server.uri("alice"), "On my way"),
        (server.uri("carol"), "Call you later"),
    ]
    for phone in people:
        assert phone.stop() == 0


def test_a_contact_added_by_refer_has_the_room_chat(
    server: Kamailio, focus: Focus, phones: PhoneFactory
) -> None:
    """The focus dials a referred contact with what the room offers, audio and
    the chat stream (RFC 4579 section 5.5 leaves the offer to the focus), so
    Bob, added by alice, writes and reads in the room as those who called in."""
    alice = start_phone(phones, server, "alice", ["bob"])
    bob = start_phone(phones, server, "bob", [])
    alice.press("contact-1")
    alice.wait_for(in_room(1), what="alice in the room")
    alice.press("contact-2")  # REFER method=INVITE: the focus calls Bob
    bob.wait_for(screen_has("Conference: Team"), what="bob's phone rings")
    bob.press("answer")
    for phone in (alice, bob):
        phone.wait_for(in_room(2), what="both in the roster")
        phone.wait_for(screen_has("Team meeting (2)"), what="the roster, the + line gone")
    bob.press("page")  # a call with chat: the canned replies, to the room
    bob.wait_for(screen_has("> On my way"), what="bob picks a reply")
    bob.press("answer")
    state = alice.wait_for(screen_has("Bob: On my way"), what="bob's text, by his contact name")
    assert state["messages"][-1]["from"] == server.uri("bob")
    alice.press("page")
    alice.wait_for(screen_has("> On my way"), what="alice picks a reply")
    alice.press("answer")
    bob.wait_for(screen_has("alice: On my way"), what="alice's text reaches bob")
    assert focus.relayed == [(server.uri("bob"), "On my way"), (server.uri("alice"), "On my way")]
    assert alice.stop() == 0
    assert bob.stop() == 0


def test_a_focus_that_refuses_chat_gives_an_audio_only_room(
    server: Kamailio, phones: PhoneFactory
) -> None:
    focus = Focus(server, ROOMS, chat=False).start()
    try:
        alice = start_phone(phones, server, "alice", [])
        alice.press("contact-1")
        alice.wait_for(in_room(1), what="alice in the room")
        alice.wait_for(
            lambda _: "declined the message stream" in alice.log_path.read_text(errors="replace"),
            what="the chat stream refused",
        )
        alice.press("page")  # no chat in this call: the core's page
        state = alice.wait_for(screen_has("Page 1/1"), what="page is the core's")
        assert [c["state"] for c in state["calls"]] == ["confirmed"]
        assert " ERROR " not in alice.log_path.read_text(errors="replace")
        alice.press("end")
        alice.wait_for(lambda s: s["conference"] is None and no_calls(s), what="left")
        assert alice.stop() == 0
    finally:
        focus.stop()


def test_a_contact_marked_conference_is_a_room(
    server: Kamailio, focus: Focus, phones: PhoneFactory
) -> None:
    """A room from `[[contacts]]` with `conference = true` (no rooms in the
    plugin's settings): one press joins it."""
    alice = phones.start(
        "alice",
        account(server, "alice"),
        [],
        buttons=4,
        room_contacts=[("Team", server.uri("team"))],
    )
    alice.wait_for(registered, what="alice registered")
    assert alice.state()["buttons"]["contact-1"]["label"] == "Team"
    alice.press("contact-1")
    state = alice.wait_for(in_room(1), what="alice in the room")
    assert state["conference"]["subject"] == "Team meeting"
    assert focus.roster("team") == [server.uri("alice")]
    assert alice.stop() == 0


def test_a_one_to_one_call_becomes_a_room(
    server: Kamailio, focus: Focus, phones: PhoneFactory
) -> None:
    alice = start_phone(phones, server, "alice", ["bob"])
    bob = start_phone(phones, server, "bob", ["alice"])
    alice.press("contact-2")
    bob.wait_for(screen_has("Incoming call"), what="bob rings")
    bob.press("answer")
    alice.wait_for(lambda s: [c["state"] for c in s["calls"]] == ["confirmed"], what="in call")

    alice.press("conference")
    state = alice.wait_for(
        lambda s: in_room(2)(s) and len(s["calls"]) == 1, timeout=15, what="both in a room"
    )
    room = focus.only_room()
    assert room.startswith("room-")
    assert state["conference"]["uri"] == focus.room_uri(room)
    assert sorted(focus.roster(room)) == [server.uri("alice"), server.uri("bob")]
    state = bob.wait_for(lambda s: in_room(2)(s) and len(s["calls"]) == 1, what="bob in it")
    assert state["calls"][0]["remote"] == focus.room_uri(room)
    assert alice.stop() == 0
    assert bob.stop() == 0


def test_partial_updates_in_order_and_a_lost_version_repaired(
    server: Kamailio, focus: Focus, phones: PhoneFactory
) -> None:
    alice = start_phone(phones, server, "alice", [])
    others = [start_phone(phones, server, user, []) for user in ("bob", "carol")]
    alice.press("contact-1")
    alice.wait_for(in_room(1), what="alice in")
    others[0].press("contact-1")
    alice.wait_for(screen_has("+ bob"), what="bob's arrival line")
    focus.lose_next_version = True
    others[1].press("contact-1")
    state = alice.wait_for(in_room(3), what="repaired by a refresh")
    assert names(state) == [server.uri(u) for u in ("alice", "bob", "carol")]
    assert focus.refreshes >= 1
    others[0].press("end")
    alice.wait_for(screen_has("\N{MINUS SIGN} bob"), what="bob's departure line")
    for phone in (alice, *others):
        assert phone.stop() == 0


def test_hostile_conference_info_keeps_the_last_good_roster(
    server: Kamailio, focus: Focus, phones: PhoneFactory
) -> None:
    alice = start_phone(phones, server, "alice", [])
    bob = start_phone(phones, server, "bob", [])
    for phone in (alice, bob):
        phone.press("contact-1")
    alice.wait_for(in_room(2), what="both in")
    # The "+ bob" line overlays the roster for a few seconds: start once it is gone.
    alice.wait_for(lambda s: "Team meeting (2)" in s["screen"], what="the roster shown")
    uri = focus.room_uri("team")
    head = (
        '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"'
        f' entity="{uri}" state="full"'
    )
    bodies = {
        "bad XML": b"<conference-info",
        "version rollback": f'{head} version="1"><users/></conference-info>'.encode(),
        # 400 people, 35 KiB: the wheel's pjsip reads 4000 bytes of a datagram
        # (PJSIP_MAX_PKT_LEN), so it arrives cut short, as bad XML.
        "a huge roster": (
            f'{head} version="800"><users>'
            + "".join(
                f'<user entity="sip:u{i}@y"><endpoint entity="sip:u{i}@y">'
                "<status>connected</status></endpoint></user>"
                for i in range(400)
            )
            + "</users></conference-info>"
        ).encode(),
        "an unknown status": (
            f'{head} version="900"><users><user entity="sip:x@y"><endpoint entity="sip:x@y">'
            "<status>exploded</status></endpoint></user></users></conference-info>"
        ).encode(),
    }
    for what, body in bodies.items():
        focus.notify_raw("team", body)
        state = alice.state()
        assert state["conference"]["count"] == 2, what
        assert "Team meeting (2)" in state["screen"], what
    log = alice.log_tail(4000)
    assert log.count("has a bad body") == 3, log
    assert "disabled" not in log, log
    assert log.count("ignoring stale conference-info version 1") == 1, log
    assert alice.stop() == 0
    assert bob.stop() == 0


def test_an_incoming_focus_invite_and_a_focus_that_vanishes(
    server: Kamailio, phones: PhoneFactory
) -> None:
    focus = Focus(server, ROOMS).start()
    alice = start_phone(phones, server, "alice", ["bob"], expires=10)
    bob = start_phone(phones, server, "bob", [], expires=10)
    alice.press("contact-1")
    alice.wait_for(in_room(1), what="alice in")
    alice.press("contact-2")
    bob.wait_for(screen_has("Conference: Team"), what="a focus calls bob")
    bob.press("answer")
    bob.wait_for(in_room(2), what="bob joined by answering")
    focus.stop()
    # Within the subscription's 10 s, plus the refresh's own 8 s request timeout
    # when it was sent just before the focus went, plus slack for a loaded machine.
    for phone in (alice, bob):
        phone.wait_for(
            lambda s: s["conference"] is None and no_calls(s), timeout=25, what="the focus is gone"
        )
        assert "the focus is gone" in phone.log_tail(200)
    assert alice.stop() == 0
    assert bob.stop() == 0


def test_a_room_without_conference_state_stays_a_call(
    server: Kamailio, phones: PhoneFactory
) -> None:
    """A room button whose far end is no focus (here a phone): no conference
    state comes, and the call goes on without a roster."""
    alice = start_phone(
        phones, server, "alice", [], rooms=[{"name": "Lobby", "uri": server.uri("bob")}]
    )
    bob = start_phone(phones, server, "bob", [])
    alice.press("contact-1")
    bob.wait_for(screen_has("Incoming call"), what="bob rings")
    bob.press("answer")
    state = alice.wait_for(screen_has("(no roster)"), timeout=20, what="no conference state")
    assert state["conference"] == {
        "uri": server.uri("bob"),
        "subject": None,
        "count": 0,
        "participants": [],
    }
    assert [c["state"] for c in state["calls"]] == ["confirmed"]
    alice.press("end")
    alice.wait_for(lambda s: s["conference"] is None and no_calls(s), what="left")
    assert alice.stop() == 0
    assert bob.stop() == 0


def status_of(state: dict[str, Any], uri: str) -> str | None:
    room = state.get("conference") or {"participants": []}
    return next((p["status"] for p in room["participants"] if p["uri"] == uri), None)


def hold_and_resume(alice: RemotePhone, dave: Baresip, uri: str) -> None:
    """dave holds the room and takes it back: re-INVITEs with a=sendonly, then
    a=sendrecv (RFC 3264 section 8.4), each answered with SDP; the call goes on."""
    seen = len(dave.events)
    for command, status in (("hold", "on-hold"), ("resume", "connected")):
        sent = len(dave.events)
        dave.command(command)
        assert dave.wait_event("CALL_REMOTE_SDP", after=sent).fields["param"] == "answer"
        alice.wait_for(lambda s, status=status: status_of(s, uri) == status, what=status)
    assert not [e for e in dave.events[seen:] if e.type == "CALL_CLOSED"], dave.events


def test_a_participant_on_hold_dialled_in_and_dialled_out(
    server: Kamailio, focus: Focus, phones: PhoneFactory, baresip: Callable[..., Baresip]
) -> None:
    """baresip holds the room in a call it made and in one the focus made for a
    REFER: the focus answers each re-INVITE and shows the hold in the roster."""
    alice = start_phone(phones, server, "alice", ["dave"])
    alice.press("contact-1")
    alice.wait_for(in_room(1), what="alice in the room")
    dave = baresip("dave", server)
    dave.wait_registered()
    dave.dial(server.uri("team"))
    alice.wait_for(in_room(2), what="dave dialled in")
    hold_and_resume(alice, dave, server.uri("dave"))
    dave.hangup()
    alice.wait_for(in_room(1), what="dave left")

    alice.press("contact-2")  # REFER: the focus dials dave
    dave.wait_event("CALL_INCOMING", timeout=10)
    dave.answer()
    alice.wait_for(in_room(2), what="dave dialled out to")
    hold_and_resume(alice, dave, server.uri("dave"))
    assert alice.stop() == 0
