"""Conferences (RFC 4579, RFC 4575): rooms on buttons, the roster on the screen,
people added and removed by REFER, a one-to-one call made into a room.

Settings (`[plugins.conference]`)::

    factory = "sip:conference@example.test"   # where `conference` makes a room
    expires = 600                             # of the conference subscription
    remove_hold_ms = 2000                     # hold on a participant that removes them

    [[plugins.conference.rooms]]              # a room on a button
    name = "Team"
    uri = "sip:team@example.test"

A contact with `conference = true` in `[[contacts]]` is a room too.

Joining: a press on a room's button calls it (the core dials: audio, plus an
MSRP chat stream, m=message, when the chat plugin is on). When the call
is answered by a focus (`isfocus` in its Contact, RFC 4579 section 3.3; or the
room is a room contact), the plugin subscribes to `conference` at the focus's
Contact, the conference URI, and shows the room: "<subject or name> (<count>)"
and the participants, scrolled with `volume_up`/`volume_down`; arrivals and
departures show as "+ Carol" / "− Bob" for a few seconds. A room whose far
end sends no conference state (none within 5 s, or the SUBSCRIBE refused)
shows "(no roster)" and stays an ordinary call. `end` leaves (the
core's BYE; the subscription is ended). An incoming INVITE from a focus shows
"Conference: <room>", and `answer` joins.

In a room, a short press on a contact not in it sends the focus a REFER with
`Refer-To: <contact;method=INVITE>` (RFC 4579 section 5.2); holding the
button of one in it for `remove_hold_ms` (2 s) sends `method=BYE` (section
5.5's removal); a shorter hold only says so. Progress from the REFER's
sipfrag NOTIFYs shows ("Inviting Bob… 180", "Bob joined"); a 403/405 shows
"not allowed".

Escalation (RFC 4579 section 5.5), in a one-to-one call with Bob, on the
`conference` button:

    1. INVITE `factory`; the focus answers from a fresh room, `isfocus` in
       its Contact: that Contact is the room's URI;
    2. the plugin joins it as above (SUBSCRIBE conference);
    3. a REFER in the call with Bob, `Refer-To: <room>`: Bob's phone INVITEs
       the room;
    4. once the REFER's NOTIFY says 200, or the roster shows Bob, the call
       with Bob is hung up: both are in the room.

Room chat is the chat plugin's: the focus relays each participant's text
with the sender in CPIM `From` (RFC 3862), and the screen shows it under
the room's name as "Bob: text"; `page` then `answer` sends a canned reply to
the room. A focus that refuses the chat stream (port 0) gives an audio-only
room.

A focus that vanishes sends nothing: once its subscription is no longer
active (a refresh failed, new SUBSCRIBEs go unanswered) and no NOTIFY came
for `expires` seconds, the subscription has lapsed: the plugin hangs up and the screen shows
"Conference lost". Bad conference-info (bad XML, a rolled-back version, a
document over the size limit) is logged once by the subscription and the
last good roster stays. The control interface's `state` gains
`"conference"` (README).
"""

from __future__ import annotations

from phone.hookspecs import ConfigError
from phone.settings import Table
from plugins.conference.plugin import ConferencePlugin, ConferenceSettings

__all__ = ["ConferencePlugin", "ConferenceSettings", "create_plugin"]


def create_plugin(settings: Table) -> ConferencePlugin:
    """Read `[plugins.conference]` (see phone.hookspecs)."""
    rooms = []
    for index, item in enumerate(settings.array("rooms") or []):
        key = f"{settings.key('rooms')}[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(key, "must be a table with name and uri")
        room = Table(key, item, ("name", "uri"))
        rooms.append((room.text("name", required=True), str(room.uri("uri", required=True))))
        room.finish()
    factory = settings.uri("factory")
    return ConferencePlugin(
        ConferenceSettings(
            rooms=tuple(rooms),
            factory=None if factory is None else str(factory),
            expires=settings.integer("expires", 10, 3600, 600),
            remove_hold_ms=settings.integer("remove_hold_ms", 500, 10_000, 2000),
        )
    )
