"""Chat and file transfer: text from Blink-style clients and other phones on
the screen, unread on the contact's LED, canned replies, files received
(MSRP, RFC 4975; files RFC 5547; pager MESSAGE, RFC 3428).

Settings (`[plugins.chat]`):

* `relay`: an MSRP relay (RFC 4976), `msrp://host:port;tcp` or
  `msrps://host:port;tcp`; without one the phone listens on `port`
  (default 0: any free port) at its own address.
* `relay_username`, `relay_password`: the relay's credentials (both or
  neither); by default the SIP account's.
* `replies`: the canned replies `page` cycles through (default
  "On my way", "Call you later", "Yes", "No").
* `history`: messages kept per contact (default 200).
* `max_file_bytes`: the largest file taken (default 10 MB); larger offers
  get 488 and a note on the screen.
* `show_seconds`: how long a message stays on the screen (default 30).
* `unread_led`: how a contact's LED says "unread", "<colour> <pattern>"
  (default "amber wink"). The pattern blinks over the colour the LED shows
  anyway (their presence), so a message does not hide whether they are
  there; the colour is for a contact whose LED is otherwise dark. The
  pattern must be one no presence or call state uses by default.

The read rule, replies and what the screen shows are in `plugins.chat.plugin`.
"""

from __future__ import annotations

from phone.api import Led, LedColor, LedPattern
from phone.hookspecs import ConfigError
from phone.msrp.error import MsrpError
from phone.msrp.uri import MsrpUri
from phone.settings import Table
from plugins.chat.plugin import ChatPlugin, ChatSettings
from plugins.presence.leds import DEFAULT_LEDS, parse_led

__all__ = ["ChatPlugin", "ChatSettings", "create_plugin"]

DEFAULT_REPLIES = ["On my way", "Call you later", "Yes", "No"]
UNREAD_LED = Led(LedColor.AMBER, LedPattern.WINK)
# The call layer's patterns (README): in a call, calling out, ringing here.
CALL_PATTERNS = frozenset((LedPattern.STEADY, LedPattern.SLOW, LedPattern.FAST))


def create_plugin(settings: Table) -> ChatPlugin:
    """Read `[plugins.chat]` (see phone.hookspecs)."""
    relay_text = settings.text("relay")
    relay = None
    if relay_text is not None:
        try:
            relay = MsrpUri.parse(relay_text)
        except MsrpError as exc:
            raise ConfigError(settings.key("relay"), exc.reason) from None
        if relay.session_id:
            raise ConfigError(settings.key("relay"), "a relay's URI has no session-id")
    username = settings.text("relay_username")
    password = settings.text("relay_password")
    if (username is None) != (password is None):
        raise ConfigError(
            settings.key("relay_password"), "set both relay_username and it, or neither"
        )
    replies = settings.texts("replies") if "replies" in settings else DEFAULT_REPLIES
    led = UNREAD_LED
    if "unread_led" in settings:
        led = parse_led(settings.take("unread_led"), settings.key("unread_led"))
    taken = CALL_PATTERNS | {state.pattern for state in DEFAULT_LEDS.values()}
    if not led.lit or led.pattern in taken:
        raise ConfigError(
            settings.key("unread_led"),
            "its pattern must differ from every presence and call state's "
            f"({', '.join(sorted(p.value for p in taken if p is not LedPattern.OFF))})",
        )
    return ChatPlugin(
        ChatSettings(
            relay=relay_text,
            relay_username=username,
            relay_password=password,
            port=settings.integer("port", 0, 65535, 0),
            replies=tuple(replies),
            history=settings.integer("history", 1, 100_000, 200),
            max_file_bytes=settings.integer("max_file_bytes", 1, 1 << 31, 10 << 20),
            unread_led=led,
            show_seconds=settings.integer("show_seconds", 1, 3600, 30),
        ),
        relay,
    )
