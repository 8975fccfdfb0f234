"""Conference state (RFC 4575) and the merged roster."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from phone.payloads import PayloadError, VersionGap, conference
from phone.payloads.conference import (
    ConferenceInfo,
    ConferenceRoster,
    ConferenceState,
    ConferenceUri,
    Description,
    DisconnectionMethod,
    ElementState,
    Endpoint,
    EndpointStatus,
    Execution,
    JoiningMethod,
    Media,
    MediaStatus,
    User,
)
from phone.payloads.sequence import DocumentState
from tests.payloads.sampledata import sample

ROOM = "sip:room1@conference.example.test"


def test_rfc4575_example():
    info = conference.parse(sample("rfc4575-conference.xml"))
    assert info.entity == "sips:conf233@example.com"
    assert (info.version, info.state) == (1, DocumentState.FULL)
    assert info.description == Description(subject="Agenda: This month's goals")
    assert info.conference_state == ConferenceState(user_count=33)
    bob, alice = info.users
    assert bob.display_text == "Bob Hoskins"
    (laptop,) = bob.endpoints
    assert laptop.status is EndpointStatus.DISCONNECTED
    assert laptop.disconnection_method is DisconnectionMethod.DEPARTED
    assert laptop.disconnection_info == Execution(
        datetime(2005, 3, 4, 20, tzinfo=UTC), "bad voice quality", "sip:mike@example.com"
    )
    assert laptop.media == (
        Media("1", "audio", "main audio", "34567", "432424", MediaStatus.SENDRECV),
    )
    assert alice.endpoints[0].joining_method is JoiningMethod.DIALED_OUT
    assert not bob.connected and alice.connected


def test_sylkserver_notify_body():
    info = conference.parse(sample("sylkserver-conference.xml"))
    assert info.version == 4
    assert info.description is not None
    assert info.description.conf_uris == (
        ConferenceUri(ROOM, "Ad-hoc conference", "participation"),
    )
    assert info.conference_state == ConferenceState(2, True, False)
    alice, bob = info.users
    assert (alice.entity, alice.display_text) == ("sip:alice@example.test", "Alice")
    (endpoint,) = alice.endpoints
    assert endpoint.status is EndpointStatus.CONNECTED
    assert endpoint.joining_method is JoiningMethod.DIALED_IN
    assert endpoint.joining_info is not None and endpoint.joining_info.when is not None
    assert [(m.type, m.status) for m in endpoint.media] == [
        ("audio", MediaStatus.SENDRECV),
        ("message", MediaStatus.SENDRECV),
    ]
    assert bob.endpoints[0].status is EndpointStatus.ON_HOLD
    roster = ConferenceRoster()
    assert roster.apply(info)
    assert [u.entity for u in roster.participants] == [
        "sip:alice@example.test",
        "sip:bob@example.test",
    ]
    assert roster.subject == "Ad-hoc conference"


def test_round_trip_every_field():
    stamp = datetime(2026, 11, 24, 20, 31, 5, tzinfo=UTC)
    info = ConferenceInfo(
        ROOM,
        2,
        DocumentState.FULL,
        Description("Room", "Weekly", "free", (ConferenceUri(ROOM, "Room", "participation"),)),
        ConferenceState(1, True, False),
        (
            User(
                "sip:alice@example.test",
                ElementState.FULL,
                "Alice",
                ("participant",),
                (
                    Endpoint(
                        "sip:alice@192.0.2.1",
                        ElementState.FULL,
                        "Alice's phone",
                        EndpointStatus.MUTED_VIA_FOCUS,
                        JoiningMethod.FOCUS_OWNER,
                        Execution(stamp, "invited", "sip:focus@example.test"),
                        DisconnectionMethod.BOOTED,
                        Execution(stamp),
                        (Media("m1", "audio", "voice", "l1", "123", MediaStatus.RECVONLY),),
                    ),
                ),
            ),
        ),
    )
    assert conference.parse(conference.build(info)) == info


def _user(
    entity: str, state: ElementState, *endpoints: Endpoint, display: str | None = None
) -> User:
    return User(entity, state, display, (), endpoints)


def test_partial_merge_per_rfc4575():
    alice_phone = Endpoint(
        "sip:alice@192.0.2.1",
        status=EndpointStatus.CONNECTED,
        media=(Media("1", "audio", status=MediaStatus.SENDRECV),),
    )
    full = ConferenceInfo(
        ROOM,
        1,
        DocumentState.FULL,
        Description(subject="Weekly"),
        ConferenceState(1, True, False),
        (_user("sip:alice@example.test", ElementState.FULL, alice_phone, display="Alice"),),
    )
    roster = ConferenceRoster()
    assert roster.apply(full)
    bob_phone = Endpoint("sip:bob@192.0.2.2", status=EndpointStatus.DIALING_IN)
    assert roster.apply(
        ConferenceInfo(
            ROOM,
            2,
            DocumentState.PARTIAL,
            conference_state=ConferenceState(user_count=2),
            users=(_user("sip:bob@example.test", ElementState.FULL, bob_phone, display="Bob"),),
        )
    )
    assert roster.info is not None
    assert roster.info.conference_state == ConferenceState(2, True, False)
    assert roster.info.description == Description(subject="Weekly")
    assert [u.entity for u in roster.participants] == ["sip:alice@example.test"]
    # Partial user, partial endpoint: only what is stated changes; media merge by id.
    on_hold = Endpoint(
        "sip:alice@192.0.2.1",
        ElementState.PARTIAL,
        status=EndpointStatus.ON_HOLD,
        media=(Media("2", "message", status=MediaStatus.SENDRECV),),
    )
    connected_bob = Endpoint(
        "sip:bob@192.0.2.2", ElementState.PARTIAL, status=EndpointStatus.CONNECTED
    )
    assert roster.apply(
        ConferenceInfo(
            ROOM,
            3,
            DocumentState.PARTIAL,
            description=Description(subject="Weekly sync"),
            users=(
                _user("sip:alice@example.test", ElementState.PARTIAL, on_hold),
                _user("sip:bob@example.test", ElementState.PARTIAL, connected_bob),
            ),
        )
    )
    alice, bob = roster.info.users
    assert alice.display_text == "Alice"
    (phone,) = alice.endpoints
    assert phone.status is EndpointStatus.ON_HOLD
    assert [m.id for m in phone.media] == ["1", "2"]
    assert bob.endpoints[0].status is EndpointStatus.CONNECTED
    assert roster.subject == "Weekly sync"
    assert len(roster.participants) == 2
    # Deleted removes, at endpoint and at user level.
    assert roster.apply(
        ConferenceInfo(
            ROOM,
            4,
            DocumentState.PARTIAL,
            users=(
                _user(
                    "sip:alice@example.test",
                    ElementState.PARTIAL,
                    Endpoint("sip:alice@192.0.2.1", ElementState.DELETED),
                ),
                _user("sip:bob@example.test", ElementState.DELETED),
            ),
        )
    )
    (alice,) = roster.info.users
    assert alice.endpoints == ()
    assert roster.participants == ()
    # Stale versions are ignored, gaps raise.
    assert roster.apply(full) is False
    with pytest.raises(VersionGap):
        roster.apply(ConferenceInfo(ROOM, 6, DocumentState.PARTIAL))
    assert roster.info.version == 4


def test_partial_state_survives_serialisation():
    update = ConferenceInfo(
        ROOM,
        5,
        DocumentState.PARTIAL,
        users=(_user("sip:bob@example.test", ElementState.DELETED),),
    )
    assert conference.parse(conference.build(update)) == update


CI = (
    b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:r@x" version="1">'
)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" version="1"/>',
            "entity",
        ),
        (
            b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="x"/>',
            "version",
        ),
        (
            b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="x" version="1" state="deleted"/>',
            "deleted",
        ),
        (CI + b"<users><user/></users></conference-info>", "entity"),
        (CI + b'<users><user entity="u" state="gone"/></users></conference-info>', "gone"),
        (
            CI
            + b'<users><user entity="u"><endpoint entity="e"><status>napping</status></endpoint></user></users></conference-info>',
            "napping",
        ),
        (
            CI
            + b'<users><user entity="u"><endpoint entity="e"><joining-method>teleported</joining-method>'
            b"</endpoint></user></users></conference-info>",
            "teleported",
        ),
        (
            CI + b'<users><user entity="u"><endpoint entity="e"><media><type>audio</type></media>'
            b"</endpoint></user></users></conference-info>",
            "'id'",
        ),
        (
            CI
            + b'<users><user entity="u"><endpoint entity="e"><media id="1"><status>loud</status></media>'
            b"</endpoint></user></users></conference-info>",
            "loud",
        ),
        (
            CI
            + b"<conference-state><user-count>many</user-count></conference-state></conference-info>",
            "user-count",
        ),
        (
            CI + b"<conference-state><locked>perhaps</locked></conference-state></conference-info>",
            "locked",
        ),
        (
            CI + b'<users><user entity="u"><endpoint entity="e"><joining-info><when>noon</when>'
            b"</joining-info></endpoint></user></users></conference-info>",
            "when",
        ),
    ],
)
def test_malformed(document, problem):
    with pytest.raises(PayloadError, match=problem):
        conference.parse(document)
