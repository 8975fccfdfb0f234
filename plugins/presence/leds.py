"""The LED map: which colour and blink each contact state shows.

In the style of Snom's `led_*` settings and Yealink's BLF LED modes, every
state is one key of `[plugins.presence.leds]`, its value "<colour> <pattern>"
(colours green, red, amber; patterns steady, slow, fast, wink) or "off". The
chat plugin winks a contact's LED in its presence colour while their text is
unread, so a state shown winking reads as unread. Keys left out keep the
default:

| state | LED |
|---|---|
| available | green steady |
| away | amber steady |
| busy, dnd, on_the_phone, in_call | red steady |
| ringing | red fast |
| pending | amber slow |
| offline, unknown | off |
"""

from __future__ import annotations

from typing import Any

from phone.api import LED_OFF, Led, LedColor, LedPattern
from phone.settings import ConfigError, Table, describe_value
from plugins.presence.state import ContactState

DEFAULT_LEDS: dict[ContactState, Led] = {
    ContactState.AVAILABLE: Led(LedColor.GREEN, LedPattern.STEADY),
    ContactState.AWAY: Led(LedColor.AMBER, LedPattern.STEADY),
    ContactState.BUSY: Led(LedColor.RED, LedPattern.STEADY),
    ContactState.DND: Led(LedColor.RED, LedPattern.STEADY),
    ContactState.ON_THE_PHONE: Led(LedColor.RED, LedPattern.STEADY),
    ContactState.IN_CALL: Led(LedColor.RED, LedPattern.STEADY),
    ContactState.RINGING: Led(LedColor.RED, LedPattern.FAST),
    ContactState.PENDING: Led(LedColor.AMBER, LedPattern.SLOW),
    ContactState.OFFLINE: LED_OFF,
    ContactState.UNKNOWN: LED_OFF,
}


def parse_led(text: Any, key: str) -> Led:
    """ "red fast" → Led; ConfigError naming `key` otherwise."""
    if not isinstance(text, str):
        raise ConfigError(
            key, f'must be a string like "red fast" or "off", got {describe_value(text)}'
        )
    words = text.lower().split()
    if words == ["off"]:
        return LED_OFF
    colors = [c.value for c in LedColor if c is not LedColor.OFF]
    patterns = [p.value for p in LedPattern if p is not LedPattern.OFF]
    if len(words) != 2 or words[0] not in colors or words[1] not in patterns:
        raise ConfigError(
            key,
            f'must be "off" or "<colour> <pattern>" with colour {"/".join(colors)} '
            f"and pattern {'/'.join(patterns)}, got {describe_value(text)}",
        )
    return Led(LedColor(words[0]), LedPattern(words[1]))


def parse_led_map(settings: Table) -> dict[ContactState, Led]:
    """The default map overridden by the `leds` table of the plugin's settings,
    whose keys are the states."""
    table = settings.table("leds", (state.value for state in ContactState))
    leds = dict(DEFAULT_LEDS)
    for name in table:
        leds[ContactState(name)] = parse_led(table.take(name), table.key(name))
    return leds
