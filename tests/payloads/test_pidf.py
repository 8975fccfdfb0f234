"""PIDF (RFC 3863) with the data model (RFC 4479) and RPID/CIPID (RFC 4480/4482)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from phone.payloads import PayloadError, pidf
from phone.payloads.pidf import BasicStatus, Contact, Device, Note, Person, Presence, PresenceTuple
from phone.payloads.rpid import (
    RPID_NS,
    Activities,
    Activity,
    Mood,
    MoodState,
    PlaceType,
    Privacy,
    RichPresence,
    UserInput,
    UserInputState,
)
from tests.payloads.sampledata import sample

NS = b'xmlns="urn:ietf:params:xml:ns:pidf"'
RPID = b'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"'
DM = b'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"'


def test_rfc3863_basic_example():
    presence = pidf.parse(sample("rfc3863-basic.xml"))
    assert presence.entity == "pres:someone@example.com"
    (only,) = presence.tuples
    assert only.id == "sg89ae"
    assert only.basic is BasicStatus.OPEN
    assert only.contact == Contact("tel:+09012345678", 0.8)
    assert presence.basic is BasicStatus.OPEN


def test_rfc3863_prefixed_example_with_notes_and_extensions():
    presence = pidf.parse(sample("rfc3863-extended.xml"))
    home, mobile = presence.tuples
    assert home.contact == Contact("tel:+09012345678", 0.65)
    assert mobile.basic is BasicStatus.CLOSED
    assert mobile.notes == (
        Note("Don't Disturb Please!", "en"),
        Note("Ne derangez pas, s'il vous plait", "fr"),
    )
    assert mobile.timestamp == datetime(2001, 10, 27, 16, 49, 29, tzinfo=UTC)
    assert presence.notes == (Note("Far away", "en"),)
    assert presence.basic is BasicStatus.OPEN


def test_rfc4480_example():
    presence = pidf.parse(sample("rfc4480-rpid.xml"))
    assert [t.id for t in presence.tuples] == ["bs35r9", "ty4658", "eg92n8"]
    assert presence.tuples[0].device_id == "urn:device:0003ba4811e3"
    (device,) = presence.devices
    assert device.device_id == "urn:device:0003ba4811e3"
    assert device.notes == (Note("PC"),)
    offset = timezone(timedelta(hours=-5))
    assert device.rich.user_input == UserInput(
        UserInputState.IDLE, 600, datetime(2004, 10, 21, 13, 20, tzinfo=offset)
    )
    (person,) = presence.persons
    plus5 = timezone(timedelta(hours=5))
    assert person.rich.activities == Activities(
        values=(Activity.AWAY,),
        since=datetime(2005, 5, 30, 12, tzinfo=plus5),
        until=datetime(2005, 5, 30, 17, tzinfo=plus5),
    )
    assert person.rich.mood == MoodState((Mood.ANGRY,), other="brooding")
    assert person.rich.place_type == PlaceType(("residence",))
    assert person.rich.privacy == frozenset({Privacy.UNKNOWN})
    assert person.rich.sphere == "bowling league"
    assert person.notes == (Note("Scoring 120"),)
    assert person.timestamp == datetime(2005, 5, 30, 16, 9, 44, tzinfo=plus5)
    assert presence.activities == (Activity.AWAY,)


def test_what_the_phone_publishes():
    presence = pidf.parse(sample("phone-published.xml"))
    (service,) = presence.tuples
    assert service.basic is BasicStatus.OPEN
    assert service.contact == Contact("sip:alice@127.0.0.1:5062;transport=udp")
    assert service.notes == (Note("Do not disturb"),)
    (person,) = presence.persons
    assert person.rich.display_name == "Alice"
    assert presence.activities == (Activity.BUSY,)
    rebuilt = pidf.build_user_presence(
        "sip:alice@example.test",
        BasicStatus.OPEN,
        activities=(Activity.BUSY,),
        note="Do not disturb",
        contact="sip:alice@127.0.0.1:5062;transport=udp",
        display_name="Alice",
        timestamp=datetime(2026, 11, 24, 20, 15, tzinfo=UTC),
    )
    assert rebuilt == sample("phone-published.xml").strip()


def test_blink_document_with_foreign_extensions():
    presence = pidf.parse(sample("blink-pidf.xml"))
    (service,) = presence.tuples
    assert service.basic is BasicStatus.OPEN
    assert service.rich.user_input is not None
    assert service.rich.user_input.state is UserInputState.ACTIVE
    assert presence.activities == (Activity.ON_THE_PHONE,)
    assert presence.persons[0].rich.icon is not None
    assert presence.devices[0].device_id.startswith("DID-")


@pytest.mark.parametrize(
    ("basic", "activities", "note"),
    [
        (BasicStatus.OPEN, (), "Available"),
        (BasicStatus.OPEN, (Activity.ON_THE_PHONE,), None),
        (BasicStatus.OPEN, (Activity.BUSY,), "Do not disturb"),
        (BasicStatus.CLOSED, (), None),
        (BasicStatus.OPEN, (Activity.AWAY, Activity.MEETING), "Back at 3"),
    ],
)
def test_one_call_user_presence_round_trips(basic, activities, note):
    body = pidf.build_user_presence(
        "sip:alice@example.test", basic, activities=activities, note=note
    )
    presence = pidf.parse(body)
    assert presence == pidf.user_presence(
        "sip:alice@example.test", basic, activities=activities, note=note
    )
    assert presence.basic is basic
    assert presence.activities == activities
    expected_notes = () if note is None else (Note(note),)
    assert presence.tuples[0].notes == expected_notes
    assert presence.persons[0].notes == expected_notes


def test_full_model_round_trip():
    stamp = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    rich = RichPresence(
        activities=Activities((Activity.LUNCH, Activity.TRAVEL), other="biking", since=stamp),
        mood=MoodState((Mood.HAPPY, Mood.IN_LOVE)),
        place_type=PlaceType(("office", "car"), other="boat"),
        privacy=frozenset({Privacy.AUDIO, Privacy.VIDEO}),
        sphere="work",
        user_input=UserInput(UserInputState.ACTIVE, 300, stamp),
        display_name="Zoë",
        icon="http://example.test/zoe.png",
    )
    presence = Presence(
        entity="sip:zoe@example.test",
        tuples=(
            PresenceTuple(
                "t1",
                BasicStatus.CLOSED,
                Contact("sip:zoe@example.test", 0.5),
                (Note("ciao", "it"),),
                stamp,
                "urn:uuid:1",
                RichPresence(user_input=UserInput(UserInputState.IDLE)),
            ),
            PresenceTuple("t2"),
        ),
        persons=(Person("p1", rich, (Note("hi"), Note("salut", "fr")), stamp),),
        devices=(Device("d1", "urn:uuid:1", RichPresence(sphere="my garden")),),
        notes=(Note("top"),),
    )
    assert pidf.parse(pidf.build(presence)) == presence


def test_unknown_activity_sphere_or_rpid_element():
    person = b'<dm:person id="p"><rpid:activities><rpid:dancing/></rpid:activities></dm:person>'
    with pytest.raises(PayloadError, match="dancing"):
        pidf.parse(
            b"<presence " + NS + b" " + DM + b" " + RPID + b' entity="x">' + person + b"</presence>"
        )
    sphere = b'<dm:person id="p"><rpid:sphere><rpid:gym/></rpid:sphere></dm:person>'
    with pytest.raises(PayloadError, match="sphere"):
        pidf.parse(
            b"<presence " + NS + b" " + DM + b" " + RPID + b' entity="x">' + sphere + b"</presence>"
        )


def test_unknown_alone_in_activities():
    person = b'<dm:person id="p"><rpid:activities><rpid:unknown/><rpid:busy/></rpid:activities></dm:person>'
    with pytest.raises(PayloadError, match="unknown"):
        pidf.parse(
            b"<presence " + NS + b" " + DM + b" " + RPID + b' entity="x">' + person + b"</presence>"
        )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<presence " + NS + b"/>", "entity"),
        (b"<presence " + NS + b' entity="x"><tuple><status/></tuple></presence>', "'id'"),
        (b"<presence " + NS + b' entity="x"><tuple id="a"/></presence>', "status"),
        (
            b"<presence "
            + NS
            + b' entity="x"><tuple id="a"><status><basic>maybe</basic></status></tuple></presence>',
            "maybe",
        ),
        (
            b"<presence "
            + NS
            + b' entity="x"><tuple id="a"><status/><contact priority="1.5">sip:a</contact></tuple></presence>',
            "0..1",
        ),
        (
            b"<presence "
            + NS
            + b' entity="x"><tuple id="a"><status/><contact priority="high">sip:a</contact></tuple></presence>',
            "number",
        ),
        (
            b"<presence "
            + NS
            + b' entity="x"><tuple id="a"><status/><timestamp>yesterday</timestamp></tuple></presence>',
            "dateTime",
        ),
        (
            b"<presence " + NS + b" " + DM + b' entity="x"><dm:device id="d"/></presence>',
            "deviceID",
        ),
        (b"<presence " + NS + b" " + DM + b' entity="x"><dm:person/></presence>', "'id'"),
        (
            b"<presence "
            + NS
            + b" "
            + DM
            + b" "
            + RPID
            + b' entity="x"><dm:person id="p"><rpid:user-input>sleepy</rpid:user-input></dm:person></presence>',
            "user-input",
        ),
        (
            b"<presence "
            + NS
            + b" "
            + DM
            + b" "
            + RPID
            + b' entity="x"><dm:person id="p"><rpid:user-input idle-threshold="-1">idle</rpid:user-input></dm:person></presence>',
            "idle-threshold",
        ),
    ],
)
def test_malformed_documents(body, problem):
    with pytest.raises(PayloadError, match=problem):
        pidf.parse(body)


def test_no_tuples_means_no_basic():
    assert pidf.parse(b"<presence " + NS + b' entity="x"/>').basic is None


def test_note_to_show_prefers_person_then_language():
    presence = pidf.parse(sample("rfc4480-rpid.xml"))
    assert presence.note() == "Scoring 120"
    tuples_only = pidf.parse(sample("rfc3863-extended.xml"))
    assert tuples_only.note() == "Don't Disturb Please!"
    assert tuples_only.note("fr") == "Ne derangez pas, s'il vous plait"
    assert tuples_only.note("de") == "Don't Disturb Please!"
    assert pidf.parse(sample("rfc3863-basic.xml")).note() is None


def test_must_understand_extensions():
    def document(flag: bytes) -> bytes:
        return (
            b"<presence " + NS + b' xmlns:x="urn:example:x" entity="sip:a@b"><tuple id="t"><status>'
            b"<basic>open</basic><x:mood " + flag + b">odd</x:mood></status></tuple></presence>"
        )

    assert pidf.parse(document(b'mustUnderstand="true"')).basic is BasicStatus.OPEN
    with pytest.raises(PayloadError, match="must be understood"):
        pidf.parse(document(b'xmlns:p="urn:ietf:params:xml:ns:pidf" p:mustUnderstand="true"'))
    understood = document(b'xmlns:p="urn:ietf:params:xml:ns:pidf" p:mustUnderstand="1"').replace(
        b"urn:example:x", RPID_NS.encode()
    )
    assert pidf.parse(understood).tuples[0].basic is BasicStatus.OPEN


def test_rfc3863_must_understand_example_is_refused():
    document = sample("rfc3863-mustunderstand.xml")
    with pytest.raises(PayloadError, match="ex1 must be understood"):
        pidf.parse(document)
    relaxed = pidf.parse(document.replace(b'impp:mustUnderstand="1"', b""))
    assert relaxed.tuples[0].contact == Contact("tel:+09012345678", 0.725)
