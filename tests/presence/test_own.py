"""What we publish reads back, through our own parsers and rule, as the state we meant."""

from __future__ import annotations

from phone.calls import CallInfo, CallState, Direction
from phone.payloads import dialoginfo, pidf
from plugins.presence.own import OwnStatus, dialog_body, own_status, presence_body
from plugins.presence.state import ContactState, from_dialogs, from_presence

AOR = "sip:bob@example.test"


def call(state: CallState, direction: Direction = Direction.IN, call_id: int = 1) -> CallInfo:
    return CallInfo(call_id, "sip:carol@example.test", None, direction, state)


def test_own_status() -> None:
    assert own_status(False, []) is OwnStatus.AVAILABLE
    assert own_status(False, [call(CallState.CONFIRMED)]) is OwnStatus.ON_THE_PHONE
    assert own_status(False, [call(CallState.DISCONNECTED)]) is OwnStatus.AVAILABLE
    assert own_status(True, [call(CallState.CONFIRMED)]) is OwnStatus.DND


def test_published_presence_reads_back() -> None:
    expected = {
        OwnStatus.AVAILABLE: ContactState.AVAILABLE,
        OwnStatus.ON_THE_PHONE: ContactState.ON_THE_PHONE,
        OwnStatus.DND: ContactState.DND,
        OwnStatus.CLOSED: ContactState.OFFLINE,
    }
    for status, state in expected.items():
        seen = from_presence(pidf.parse(presence_body(AOR, status)))
        assert seen.state is state, status
    assert from_presence(pidf.parse(presence_body(AOR, OwnStatus.DND))).note == "Do not disturb"


def test_published_dialogs_read_back() -> None:
    ringing = dialoginfo.parse(dialog_body(AOR, 1, [call(CallState.RINGING)]))
    assert ringing.entity == AOR and ringing.version == 1
    assert from_dialogs(ringing) is ContactState.RINGING
    talking = dialoginfo.parse(dialog_body(AOR, 2, [call(CallState.CONFIRMED)]))
    assert from_dialogs(talking) is ContactState.IN_CALL
    calling = dialoginfo.parse(dialog_body(AOR, 3, [call(CallState.CALLING, Direction.OUT)]))
    assert from_dialogs(calling) is ContactState.IN_CALL
    ended = dialoginfo.merge(
        talking, dialoginfo.parse(dialog_body(AOR, 3, [call(CallState.DISCONNECTED)]))
    )
    assert from_dialogs(ended) is None
