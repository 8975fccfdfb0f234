"""Presence LEDs: every contact button shows who is there (SIMPLE presence, RLS, BLF).

Settings (`[plugins.presence]`):

* `rls_uri`: a resource list URI (RFC 4662) to watch all contacts with one
  subscription; without it each contact gets its own. The XCAP plugin
  replaces it with the user's rls-services URI (`presence_list_changed`).
  When the list's SUBSCRIBE is answered 2xx but no NOTIFY follows (a
  full-state NOTIFY too long for pjsip is dropped unseen), the plugin falls
  back to one subscription per contact, shows `RLS!` in the footer, and tries
  the list again later.
* `rls_retry` (seconds, default 600): how long the fallback lasts before the
  list is tried again.
* `publish` (default true): publish our presence and dialog state.
* `watchers` (default true): watch our watcher info and show the count of
  watchers waiting for authorization in the footer (`W:<n>`).
* `[plugins.presence.leds]`: the LED of each state (see `plugins.presence.leds`).

Per contact, `blf = true` in `[[contacts]]` adds a dialog subscription
(RFC 4235). How presence documents become one state is in
`plugins.presence.state`; what we publish in `plugins.presence.own`.
"""

from __future__ import annotations

from phone.settings import Table
from plugins.presence.leds import parse_led_map
from plugins.presence.plugin import PresencePlugin, PresenceSettings

__all__ = ["PresencePlugin", "PresenceSettings", "create_plugin"]


def create_plugin(settings: Table) -> PresencePlugin:
    """Read `[plugins.presence]` (see phone.hookspecs)."""
    rls_uri = settings.uri("rls_uri")
    return PresencePlugin(
        PresenceSettings(
            rls_uri=None if rls_uri is None else str(rls_uri),
            publish=settings.boolean("publish", True),
            watchers=settings.boolean("watchers", True),
            rls_retry=settings.integer("rls_retry", 5, 86400, 600),
            leds=parse_led_map(settings),
        )
    )
