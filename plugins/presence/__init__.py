"""Presence LEDs: every contact button shows who is there (SIMPLE presence, RLS, BLF).

Settings (`[plugins.presence]`):

* `rls_uri`: a resource list URI (RFC 4662) to watch all contacts with one
  subscription; without it each contact gets its own.
* `publish` (default true): publish our presence and dialog state.
* `watchers` (default true): watch our watcher info and show the count of
  watchers waiting for authorization in the footer (`W:<n>`).
* `[plugins.presence.leds]`: the LED of each state (see `plugins.presence.leds`).

Per contact, `blf = true` in `[[contacts]]` adds a dialog subscription
(RFC 4235). How presence documents become one state is in
`plugins.presence.state`; what we publish in `plugins.presence.own`.
"""

from __future__ import annotations

from typing import Any

from phone.hookspecs import ConfigError
from phone.uri import parse_sip_uri
from plugins.presence.leds import parse_led_map
from plugins.presence.plugin import PresencePlugin, PresenceSettings

__all__ = ["PresencePlugin", "PresenceSettings", "create_plugin"]

KEYS = ("rls_uri", "publish", "watchers", "leds")


def create_plugin(settings: dict[str, Any]) -> PresencePlugin:
    """Check the `[plugins.presence]` settings (see phone.hookspecs)."""
    for key in settings:
        if key not in KEYS:
            raise ConfigError(key, f"unknown key (keys: {', '.join(KEYS)})")
    rls_uri = settings.get("rls_uri")
    if rls_uri is not None:
        if not isinstance(rls_uri, str):
            raise ConfigError("rls_uri", f"must be a SIP URI string, got {rls_uri!r}")
        try:
            parse_sip_uri(rls_uri)
        except ValueError as exc:
            raise ConfigError("rls_uri", f"not a SIP URI: {exc}") from None
    flags = {}
    for key in ("publish", "watchers"):
        value = settings.get(key, True)
        if type(value) is not bool:
            raise ConfigError(key, f"must be true or false, got {value!r}")
        flags[key] = value
    leds = parse_led_map(settings.get("leds", {}))
    return PresencePlugin(PresenceSettings(leds=leds, rls_uri=rls_uri, **flags))
