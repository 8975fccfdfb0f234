"""Missed calls: a count in the footer (`M:2`) and a red slow blink on the caller's button.

A call is missed when it came in and ended without being answered. The count
is kept in the plugin's own table, so it survives a restart. A long press on
`end` while no call is going on shows how many and clears them.

The example of plugins/README.md: three hooks, and `PhoneApi` only.
"""

from __future__ import annotations

from phone.api import CallInfo, CallState, Direction, Led, LedColor, LedPattern, PhoneApi
from phone.hookspecs import hookimpl

NAME = "missed_calls"  # the plugin's table prefix, LED layer and footer flag
MIGRATIONS = (("CREATE TABLE missed_calls_calls (uri TEXT NOT NULL, ended_at REAL NOT NULL)",),)
MISSED_LED = Led(LedColor.RED, LedPattern.SLOW)


def show(phone: PhoneApi) -> None:
    """Footer count and LEDs from the table."""
    rows = phone.tables(NAME, MIGRATIONS).query("SELECT uri FROM missed_calls_calls")
    phone.set_indicator(NAME, f"M:{len(rows)}" if rows else "")
    for row in rows:
        phone.set_led(row["uri"], MISSED_LED, NAME)
    phone.redraw()


@hookimpl
def phone_started(phone: PhoneApi) -> None:
    show(phone)


@hookimpl
def call_changed(phone: PhoneApi, call: CallInfo) -> None:
    missed = call.direction is Direction.IN and not call.answered
    if call.state is CallState.DISCONNECTED and missed:
        phone.tables(NAME, MIGRATIONS).execute(
            "INSERT INTO missed_calls_calls (uri, ended_at) VALUES (?, ?)",
            (call.remote_uri, call.ended_at or 0.0),
        )
        show(phone)


@hookimpl
def button_pressed(phone: PhoneApi, button: str, long_press: bool) -> bool | None:
    if button != "end" or not long_press or phone.calls():
        return None
    tables = phone.tables(NAME, MIGRATIONS)
    rows = tables.query("SELECT uri FROM missed_calls_calls")
    tables.execute("DELETE FROM missed_calls_calls")
    for row in rows:
        phone.clear_led(row["uri"], NAME)
    phone.show_message([f"{len(rows)} missed", "cleared"], 3.0)
    show(phone)
    return True
