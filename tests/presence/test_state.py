"""The one-state-per-contact rule (plugins.presence.state) on real PIDF/RPID/dialog-info bytes."""

from __future__ import annotations

import pytest

from phone.payloads import dialoginfo, pidf
from plugins.presence.state import ContactPresence, ContactState, from_dialogs, from_presence, shown

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
    'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
    'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@example.test">'
)


def doc(body: str) -> pidf.Presence:
    return pidf.parse((HEAD + body + "</presence>").encode())


def service(tid: str, basic: str, extra: str = "") -> str:
    return f'<tuple id="{tid}"><status><basic>{basic}</basic></status>{extra}</tuple>'


def person(activities: str, note: str = "") -> str:
    note_xml = f"<dm:note>{note}</dm:note>" if note else ""
    return (
        f'<dm:person id="p"><rpid:activities>{activities}</rpid:activities>{note_xml}</dm:person>'
    )


@pytest.mark.parametrize(
    ("body", "state"),
    [
        (service("a", "open"), ContactState.AVAILABLE),
        (service("a", "closed"), ContactState.OFFLINE),
        (service("a", "open") + person("<rpid:away/>"), ContactState.AWAY),
        (service("a", "open") + person("<rpid:lunch/>"), ContactState.AWAY),
        (service("a", "open") + person("<rpid:meeting/>"), ContactState.BUSY),
        (service("a", "open") + person("<rpid:on-the-phone/>"), ContactState.ON_THE_PHONE),
        (service("a", "open") + person("<rpid:busy/>", "Do not disturb"), ContactState.DND),
        (service("a", "open") + person("<rpid:busy/>", "In a meeting"), ContactState.BUSY),
        # rule 4: every tuple closed is offline, whatever the person says
        (service("a", "closed") + person("<rpid:busy/>"), ContactState.OFFLINE),
        # no basic status anywhere: the person, else unknown
        (person("<rpid:away/>"), ContactState.AWAY),
        ("", ContactState.UNKNOWN),
    ],
)
def test_single_source(body: str, state: ContactState) -> None:
    assert from_presence(doc(body)).state is state


def test_on_the_phone_device_beats_an_idle_one() -> None:
    body = service("desk", "open", "<rpid:activities><rpid:on-the-phone/></rpid:activities>")
    body += service("soft", "open") + service("old", "closed")
    assert from_presence(doc(body)).state is ContactState.ON_THE_PHONE


def test_dnd_beats_on_the_phone_and_away_beats_plain_open() -> None:
    body = service("a", "open", "<rpid:activities><rpid:on-the-phone/></rpid:activities>")
    assert from_presence(doc(body + person("<rpid:busy/>", "DND"))).state is ContactState.DND
    assert (
        from_presence(doc(service("a", "open") + person("<rpid:away/>"))).state is ContactState.AWAY
    )


def test_note_is_kept_for_the_long_press() -> None:
    presence = from_presence(doc(service("a", "open") + person("<rpid:meeting/>", "In a meeting")))
    assert presence == ContactPresence(ContactState.BUSY, "In a meeting")


def dialogs(*states: tuple[str, str | None]) -> dialoginfo.DialogInfo:
    items = "".join(
        f'<dialog id="d{i}"' + (f' direction="{d}"' if d else "") + f"><state>{s}</state></dialog>"
        for i, (s, d) in enumerate(states)
    )
    return dialoginfo.parse(
        (
            '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full"'
            f' entity="sip:bob@example.test">{items}</dialog-info>'
        ).encode()
    )


def test_dialog_states() -> None:
    assert from_dialogs(None) is None
    assert from_dialogs(dialogs()) is None
    assert from_dialogs(dialogs(("early", "recipient"))) is ContactState.RINGING
    assert from_dialogs(dialogs(("early", None))) is ContactState.RINGING
    assert from_dialogs(dialogs(("trying", "initiator"))) is ContactState.IN_CALL
    assert from_dialogs(dialogs(("confirmed", "initiator"))) is ContactState.IN_CALL
    # a second call ringing in while one is confirmed: the ring shows
    assert (
        from_dialogs(dialogs(("confirmed", None), ("early", "recipient"))) is ContactState.RINGING
    )
    assert from_dialogs(dialogs(("terminated", None))) is None


def test_dialog_overrides_presence_while_it_lasts() -> None:
    available = ContactPresence(ContactState.AVAILABLE, "hi")
    assert shown(available, ContactState.IN_CALL) == ContactPresence(ContactState.IN_CALL, "hi")
    assert shown(available, None) is available
