"""Dialog state (RFC 4235)."""

from __future__ import annotations

import pytest

from phone.payloads import PayloadError, VersionGap, dialoginfo
from phone.payloads.dialoginfo import (
    Dialog,
    DialogEvent,
    DialogInfo,
    DialogState,
    Direction,
    Participant,
)
from phone.payloads.sequence import DocumentState
from tests.payloads.sampledata import sample

ENTITY = "sip:bob@example.test"


def test_rfc4235_trying_example():
    info = dialoginfo.parse(sample("rfc4235-trying.xml"))
    assert (info.version, info.state, info.entity) == (
        0,
        DocumentState.FULL,
        "sip:alice@example.com",
    )
    (dialog,) = info.dialogs
    assert dialog == Dialog(
        "as7d900as8",
        DialogState.TRYING,
        call_id="a84b4c76e66710",
        local_tag="1928301774",
        direction=Direction.INITIATOR,
    )
    assert info.ringing and not info.busy


def test_rfc4235_confirmed_example():
    info = dialoginfo.parse(sample("rfc4235-confirmed.xml"))
    (dialog,) = info.dialogs
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.duration == 274
    assert dialog.remote_tag == "456887766"
    assert dialog.local == Participant(
        "sip:alice@example.com", "Alice", "sip:alice@pc33.example.com"
    )
    assert dialog.remote == Participant(
        "sip:bob@example.org", "Bob", "sip:bobster@phone21.example.org"
    )
    assert info.busy and not info.ringing


def test_round_trip_every_field():
    info = DialogInfo(
        3,
        DocumentState.PARTIAL,
        ENTITY,
        (
            Dialog(
                "d1",
                DialogState.TERMINATED,
                DialogEvent.REJECTED,
                486,
                "c@h",
                "lt",
                "rt",
                Direction.RECIPIENT,
                12,
                Participant("sip:bob@example.test", "Bob", "sip:bob@192.0.2.1"),
                Participant("sip:alice@example.test"),
            ),
            Dialog("d2", DialogState.EARLY),
        ),
    )
    assert dialoginfo.parse(dialoginfo.build(info)) == info


def test_partial_merge_drops_terminated_dialogs():
    ringing = Dialog("d1", DialogState.EARLY, direction=Direction.RECIPIENT)
    state = dialoginfo.merge(None, DialogInfo(0, DocumentState.FULL, ENTITY, (ringing,)))
    assert state.ringing
    answered = Dialog("d1", DialogState.CONFIRMED, direction=Direction.RECIPIENT)
    second = Dialog("d2", DialogState.TRYING, direction=Direction.INITIATOR)
    state = dialoginfo.merge(
        state, DialogInfo(1, DocumentState.PARTIAL, ENTITY, (answered, second))
    )
    assert state.dialogs == (answered, second)
    assert state.busy
    ended = Dialog("d1", DialogState.TERMINATED, DialogEvent.REMOTE_BYE)
    state = dialoginfo.merge(state, DialogInfo(2, DocumentState.PARTIAL, ENTITY, (ended,)))
    assert state.dialogs == (second,)
    assert not state.busy
    assert (
        dialoginfo.merge(state, DialogInfo(1, DocumentState.PARTIAL, ENTITY, (answered,))) is state
    )
    with pytest.raises(VersionGap):
        dialoginfo.merge(state, DialogInfo(4, DocumentState.PARTIAL, ENTITY, ()))
    state = dialoginfo.merge(state, DialogInfo(4, DocumentState.FULL, ENTITY, ()))
    assert state.dialogs == () and state.version == 4


DI = b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:a@b">'


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full"/>',
            "entity",
        ),
        (DI + b'<dialog id="x"/></dialog-info>', "state"),
        (DI + b'<dialog id="x"><state>ringing</state></dialog></dialog-info>', "ringing"),
        (DI + b"<dialog><state>early</state></dialog></dialog-info>", "'id'"),
        (
            DI + b'<dialog id="x" direction="sideways"><state>early</state></dialog></dialog-info>',
            "sideways",
        ),
        (
            DI
            + b'<dialog id="x"><state event="exploded">terminated</state></dialog></dialog-info>',
            "exploded",
        ),
        (
            DI + b'<dialog id="x"><state code="4xx">terminated</state></dialog></dialog-info>',
            "code",
        ),
        (
            DI
            + b'<dialog id="x"><state>early</state><duration>long</duration></dialog></dialog-info>',
            "duration",
        ),
        (
            DI
            + b'<dialog id="x"><state>early</state><local><target/></local></dialog></dialog-info>',
            "'uri'",
        ),
    ],
)
def test_malformed(document, problem):
    with pytest.raises(PayloadError, match=problem):
        dialoginfo.parse(document)
