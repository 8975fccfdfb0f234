"""The conference screen and state from conference-info documents, the
plugin's settings, and the Contact header parameters that mark a focus."""

from __future__ import annotations

import pytest

from phone.hookspecs import ConfigError
from phone.payloads import conference
from phone.payloads.sequence import DocumentState
from phone.settings import Table
from phone.uri import SipUriError, header_params
from plugins.conference import create_plugin, view

ROOM = "sip:team@focus.example.test"


def user(name: str, status: conference.EndpointStatus | None) -> conference.User:
    entity = f"sip:{name}@example.test"
    endpoint = conference.Endpoint(entity=entity, status=status)
    return conference.User(entity=entity, display_text=name.title(), endpoints=(endpoint,))


def info(*users: conference.User, count: int | None = None) -> conference.ConferenceInfo:
    return conference.ConferenceInfo(
        ROOM,
        1,
        DocumentState.FULL,
        description=conference.Description(subject="Standup"),
        conference_state=None if count is None else conference.ConferenceState(user_count=count),
        users=users,
    )


def display(uri: str, name: str | None) -> str:
    return name or uri


CONNECTED = conference.EndpointStatus.CONNECTED


def test_the_panel_shows_subject_count_and_a_scrolled_window() -> None:
    room = info(
        user("ann", CONNECTED),
        user("bob", conference.EndpointStatus.DIALING_OUT),
        user("cid", CONNECTED),
        user("dee", conference.EndpointStatus.DISCONNECTED),
    )
    assert view.panel("Team", room, 0, display) == ["Standup (2)", "Ann", "Bob dialing-out"]
    assert view.max_offset(room) == 1
    assert view.panel("Team", room, 1, display) == ["Standup (2)", "Bob dialing-out", "Cid"]
    assert view.panel("Team", None, 0, display) == ["Team (0)", "joining..."]


def test_the_count_is_the_focus_user_count_when_given() -> None:
    assert view.count(info(user("ann", CONNECTED), count=7)) == 7


def test_changes_name_who_came_and_went() -> None:
    before = view.present(info(user("ann", CONNECTED), user("bob", CONNECTED)))
    after = view.present(info(user("ann", CONNECTED), user("cid", CONNECTED)))
    assert view.changes(before, after, display) == ["+ Cid", "\N{MINUS SIGN} Bob"]


def test_describe_is_the_control_state_value() -> None:
    described = view.describe(ROOM, info(user("ann", conference.EndpointStatus.ON_HOLD)))
    assert described == {
        "uri": ROOM,
        "subject": "Standup",
        "count": 1,  # on hold is still in the room
        "participants": [{"uri": "sip:ann@example.test", "name": "Ann", "status": "on-hold"}],
    }


def test_settings_rooms_factory_and_expires() -> None:
    plugin = create_plugin(
        Table(
            "plugins.conference",
            {
                "rooms": [{"name": "Team", "uri": "sip:team@example.test"}],
                "factory": "sip:conference@example.test",
                "expires": 60,
            },
        )
    )
    assert plugin.settings.rooms == (("Team", "sip:team@example.test"),)
    assert plugin.settings.factory == "sip:conference@example.test"
    assert plugin.settings.expires == 60


@pytest.mark.parametrize(
    ("rooms", "key"),
    [
        (["team"], "plugins.conference.rooms[0]"),
        ([{"name": "Team"}], "plugins.conference.rooms[0].uri"),
        ([{"name": "Team", "uri": "team@"}], "plugins.conference.rooms[0].uri"),
        ([{"name": "Team", "uri": "sip:t@x", "url": "x"}], "plugins.conference.rooms[0].url"),
    ],
)
def test_bad_rooms_name_their_key(rooms: list[object], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_plugin(Table("plugins.conference", {"rooms": rooms}))
    assert str(error.value).startswith(key + ":")


def test_header_params_of_a_focus_contact() -> None:
    assert header_params("<sip:team@10.0.0.1:5060;transport=udp>;isfocus") == {"isfocus": None}
    assert header_params('"Room" <sip:r@x>;isfocus;expires=60') == {
        "isfocus": None,
        "expires": "60",
    }
    assert header_params("sip:r@x;isfocus") == {"isfocus": None}
    assert header_params("<sip:r@x;isfocus>") == {}
    with pytest.raises(SipUriError):
        header_params("<sip:r@x>;;")
