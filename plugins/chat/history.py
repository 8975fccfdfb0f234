"""Chat history in the plugin's own SQLite tables: messages per contact,
bounded by the `history` setting, and the files received.

A message's `peer` is the other side's address key (user@host), so texts
from `sip:bob@example.test` and `sip:bob@example.test;transport=tcp` are one
conversation. Unread is a flag on incoming messages: the LED, the footer
count and the contact button all read it from here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from phone.api import PhoneApi, PluginTables, address_key

NAME = "chat"
MIGRATIONS = (
    (
        "CREATE TABLE chat_messages (id INTEGER PRIMARY KEY, peer TEXT NOT NULL,"
        " from_uri TEXT NOT NULL, to_uri TEXT NOT NULL, text TEXT NOT NULL,"
        " direction TEXT NOT NULL, read INTEGER NOT NULL, time REAL NOT NULL)",
        "CREATE INDEX chat_messages_peer ON chat_messages (peer, id)",
        "CREATE TABLE chat_files (id INTEGER PRIMARY KEY, from_uri TEXT NOT NULL,"
        " name TEXT NOT NULL, size INTEGER NOT NULL, path TEXT NOT NULL,"
        " sha1_ok INTEGER, time REAL NOT NULL)",
    ),
)
STATE_MESSAGES = 20  # the control interface's `messages`: the last 20


@dataclass(frozen=True)
class Unread:
    peer_uri: str  # the sender's URI as it came
    text: str


class History:
    def __init__(self, phone: PhoneApi, bound: int) -> None:
        self._tables: PluginTables = phone.tables(NAME, MIGRATIONS)
        self._bound = bound

    def add(self, peer_uri: str, from_uri: str, to_uri: str, text: str, incoming: bool) -> None:
        """Keep one message; the conversation keeps its last `bound` messages."""
        peer = address_key(peer_uri)
        with self._tables.transaction():
            self._tables.execute(
                "INSERT INTO chat_messages (peer, from_uri, to_uri, text, direction, read, time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (peer, from_uri, to_uri, text, "in" if incoming else "out", int(not incoming),
                 time.time()),
            )  # fmt: skip
            self._tables.execute(
                "DELETE FROM chat_messages WHERE peer = ? AND id NOT IN"
                " (SELECT id FROM chat_messages WHERE peer = ? ORDER BY id DESC LIMIT ?)",
                (peer, peer, self._bound),
            )

    def unread(self, peer_uri: str) -> list[Unread]:
        rows = self._tables.query(
            "SELECT from_uri, text FROM chat_messages WHERE peer = ? AND direction = 'in'"
            " AND read = 0 ORDER BY id",
            (address_key(peer_uri),),
        )
        return [Unread(row["from_uri"], row["text"]) for row in rows]

    def unread_peers(self) -> dict[str, str]:
        """Address key → a sender URI, for every conversation with unread messages."""
        rows = self._tables.query(
            "SELECT peer, MAX(from_uri) AS uri FROM chat_messages"
            " WHERE direction = 'in' AND read = 0 GROUP BY peer"
        )
        return {row["peer"]: row["uri"] for row in rows}

    def unread_count(self) -> int:
        rows = self._tables.query(
            "SELECT COUNT(*) AS n FROM chat_messages WHERE direction = 'in' AND read = 0"
        )
        return int(rows[0]["n"])

    def mark_read(self, peer_uri: str) -> None:
        self._tables.execute(
            "UPDATE chat_messages SET read = 1 WHERE peer = ? AND read = 0",
            (address_key(peer_uri),),
        )

    def add_file(
        self, from_uri: str, name: str, size: int, path: str, sha1_ok: bool | None
    ) -> None:
        sha1 = None if sha1_ok is None else int(sha1_ok)
        self._tables.execute(
            "INSERT INTO chat_files (from_uri, name, size, path, sha1_ok, time)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (from_uri, name, size, path, sha1, time.time()),
        )

    def describe(self) -> dict[str, Any]:
        """The control interface's `messages` (the last 20, oldest first) and `files`."""
        rows = self._tables.query(
            "SELECT * FROM (SELECT * FROM chat_messages ORDER BY id DESC LIMIT ?) ORDER BY id",
            (STATE_MESSAGES,),
        )
        messages = [
            {
                "from": row["from_uri"],
                "to": row["to_uri"],
                "text": row["text"],
                "direction": row["direction"],
                "read": bool(row["read"]),
                "time": datetime.fromtimestamp(row["time"], UTC).isoformat(),
            }
            for row in rows
        ]
        files = [
            {
                "from": row["from_uri"],
                "name": row["name"],
                "size": row["size"],
                "path": row["path"],
                "sha1_ok": None if row["sha1_ok"] is None else bool(row["sha1_ok"]),
            }
            for row in self._tables.query("SELECT * FROM chat_files ORDER BY id")
        ]
        return {"messages": messages, "files": files}
