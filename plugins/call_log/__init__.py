"""Call log: one row per finished call in the phone's store, newest kept.

A call is logged when `call_changed` reports it 'disconnected', the last state
of every call. Settings (`[plugins.call_log]`): `max_entries` (default 500);
older rows are pruned as new ones arrive. The rows live in the plugin's own
table (`PhoneApi.tables`); `recent(tables, n)` reads the log, for the screen
or the control interface.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum

from phone.api import CallInfo, Direction, PhoneApi, PluginTables
from phone.hookspecs import hookimpl
from phone.settings import Table

log = logging.getLogger(__name__)

PLUGIN = "call_log"
DEFAULT_MAX_ENTRIES = 500
MAX_ENTRIES_LIMIT = 100_000

# MIGRATIONS[i] takes this plugin's tables from version i to i + 1 (PhoneApi.tables).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE call_log_calls (
            call_id INTEGER NOT NULL,
            remote_uri TEXT NOT NULL,
            remote_name TEXT,
            direction TEXT NOT NULL,
            started_at REAL NOT NULL,
            connected_at REAL,
            ended_at REAL NOT NULL,
            duration REAL NOT NULL,
            code INTEGER,
            reason TEXT,
            outcome TEXT NOT NULL,
            UNIQUE (call_id, started_at)
        )""",
        "CREATE INDEX call_log_calls_by_start ON call_log_calls (started_at)",
    ),
)


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"  # incoming, never answered (including calls we refused)
    UNANSWERED = "unanswered"  # outgoing, never answered


@dataclass(frozen=True)
class CallRecord:
    remote_uri: str
    remote_name: str | None
    direction: str  # 'in' or 'out'
    started_at: float
    connected_at: float | None
    ended_at: float
    duration: float  # seconds talking: from connected_at to ended_at, 0 if never answered
    code: int | None
    reason: str | None
    outcome: CallOutcome


class CallLog:
    """The plugin object registered with the host (see `create_plugin`)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._tables: PluginTables | None = None

    @hookimpl
    def call_changed(self, phone: PhoneApi, call: CallInfo) -> None:
        if call.state == "disconnected":
            if self._tables is None:
                self._tables = phone.tables(PLUGIN, MIGRATIONS)
            record(self._tables, call, self.max_entries)


def create_plugin(settings: Table) -> CallLog:
    """Read `[plugins.call_log]` (see phone.hookspecs)."""
    return CallLog(settings.integer("max_entries", 1, MAX_ENTRIES_LIMIT, DEFAULT_MAX_ENTRIES))


def record(tables: PluginTables, call: CallInfo, max_entries: int) -> bool:
    """Store one finished call and prune the oldest rows.

    Returns False when this call was logged already (same id and start time).
    """
    ended_at = call.ended_at if call.ended_at is not None else time.time()
    connected_at = call.connected_at
    duration = 0.0 if connected_at is None else max(0.0, ended_at - connected_at)
    direction = str(call.direction)
    if connected_at is not None:
        outcome = CallOutcome.ANSWERED
    elif call.direction is Direction.IN:
        outcome = CallOutcome.MISSED
    else:
        outcome = CallOutcome.UNANSWERED
    with tables.transaction():
        added = tables.execute(
            "INSERT OR IGNORE INTO call_log_calls (call_id, remote_uri, remote_name, direction,"
            " started_at, connected_at, ended_at, duration, code, reason, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                call.id,
                call.remote_uri,
                call.remote_name,
                direction,
                call.started_at,
                connected_at,
                ended_at,
                duration,
                call.code,
                call.reason,
                outcome.value,
            ),
        )
        tables.execute(
            "DELETE FROM call_log_calls WHERE rowid NOT IN"
            " (SELECT rowid FROM call_log_calls ORDER BY started_at DESC, rowid DESC LIMIT ?)",
            (max_entries,),
        )
    if added:
        log.info("call log: %s call %s %s, %.0fs", direction, call.remote_uri, outcome, duration)
    return bool(added)


def recent(tables: PluginTables, n: int) -> list[CallRecord]:
    """The `n` latest calls, newest first."""
    rows = tables.query(
        "SELECT remote_uri, remote_name, direction, started_at, connected_at, ended_at,"
        " duration, code, reason, outcome FROM call_log_calls"
        " ORDER BY started_at DESC, rowid DESC LIMIT ?",
        (n,),
    )
    return [
        CallRecord(
            remote_uri=row["remote_uri"],
            remote_name=row["remote_name"],
            direction=row["direction"],
            started_at=row["started_at"],
            connected_at=row["connected_at"],
            ended_at=row["ended_at"],
            duration=row["duration"],
            code=row["code"],
            reason=row["reason"],
            outcome=CallOutcome(row["outcome"]),
        )
        for row in rows
    ]
