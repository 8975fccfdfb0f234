"""The phone's local state in one SQLite file.

The contact buttons are kept here so the phone starts with them even when the
network (and the XCAP server) is down. WAL journal with synchronous=NORMAL:
readers never wait for the writer, and a commit does not fsync on an SD card,
at the price of losing the last commits on a power cut, never of corruption.

Each source of contacts ('config' now, 'xcap' later) owns its rows and
replaces them in one transaction. Plugins own tables too: they declare their
schema as numbered migrations with `plugin_schema`, and their tables are named
`<plugin>_...`. The core schema is versioned with `PRAGMA user_version`; each
plugin's version is a row in `plugin_schema`.

All calls come from the event loop thread (sqlite3's same-thread check is on).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# MIGRATIONS[i] brings the core schema from version i to i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE contacts (
            source TEXT NOT NULL,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            uri TEXT NOT NULL,
            PRIMARY KEY (source, position)
        )""",
        """CREATE TABLE plugin_schema (
            plugin TEXT PRIMARY KEY,
            version INTEGER NOT NULL
        )""",
    ),
    # A contact's busy-lamp field (RFC 4235 dialog subscription), for every source.
    ("ALTER TABLE contacts ADD COLUMN blf INTEGER NOT NULL DEFAULT 0",),
)


class StoreError(RuntimeError):
    """The database cannot be used as this firmware expects."""


@dataclass(frozen=True)
class StoredContact:
    position: int  # 0-based, within its source
    name: str
    uri: str
    source: str
    blf: bool = False


class Store:
    """The open database. Use as a context manager or call `close()`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; `transaction()` makes them.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self.journal_mode: str = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if self.journal_mode != "wal":
            log.warning(
                "store %s: journal mode is %s, WAL unavailable", self.path, self.journal_mode
            )
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        with self.transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this firmware "
                    f"knows ({len(MIGRATIONS)})"
                )
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    self._db.execute(statement)
            if version < len(MIGRATIONS):
                # PRAGMA takes no parameters; the value is our own integer.
                self._db.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
                log.info("store %s: schema %d -> %d", self.path, version, len(MIGRATIONS))

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE); rolled back if the block raises.
        Nesting is not supported: SQLite has no nested BEGIN."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- contacts -------------------------------------------------------
    def contacts(self, source: str | None = None) -> list[StoredContact]:
        """The stored contacts, of one source or of all (by source, then position)."""
        sql = "SELECT position, name, uri, source, blf FROM contacts"
        params: tuple[str, ...] = ()
        if source is not None:
            sql += " WHERE source = ?"
            params = (source,)
        rows = self._db.execute(sql + " ORDER BY source, position", params).fetchall()
        return [StoredContact(row[0], row[1], row[2], row[3], bool(row[4])) for row in rows]

    def replace_contacts(
        self, source: str, contacts: Sequence[tuple[str, str]], blf: Collection[str] = ()
    ) -> None:
        """Make `contacts` (name, uri pairs, in order) the whole of `source`'s contacts;
        those whose URI is in `blf` get a busy-lamp field."""
        with self.transaction():
            self._db.execute("DELETE FROM contacts WHERE source = ?", (source,))
            self._db.executemany(
                "INSERT INTO contacts (source, position, name, uri, blf) VALUES (?, ?, ?, ?, ?)",
                [
                    (source, position, name, uri, uri in blf)
                    for position, (name, uri) in enumerate(contacts)
                ],
            )
        log.info("store: %d contacts from %s", len(contacts), source)

    # -- plugin tables --------------------------------------------------
    def plugin_schema(self, plugin: str, migrations: Sequence[Sequence[str]]) -> int:
        """Bring `plugin`'s tables up to date and return their version.

        `migrations[i]` holds the statements that take the plugin's schema from
        version i to i + 1; the missing ones run in one transaction. Every table
        they create must be named `<plugin>_...`, so plugins cannot step on each
        other or on the core. Raises StoreError when the stored version is newer
        than `migrations` or a migration creates a foreign table.
        """
        if not _IDENTIFIER.fullmatch(plugin):
            raise ValueError(f"plugin name {plugin!r} cannot prefix SQL table names")
        prefix = f"{plugin}_"
        with self.transaction():
            row = self._db.execute(
                "SELECT version FROM plugin_schema WHERE plugin = ?", (plugin,)
            ).fetchone()
            version = 0 if row is None else int(row[0])
            if version > len(migrations):
                raise StoreError(
                    f"plugin {plugin}: schema version {version} is newer than the plugin "
                    f"knows ({len(migrations)})"
                )
            if version == len(migrations):
                return version
            before = self._table_names()
            for statements in migrations[version:]:
                for statement in statements:
                    self._db.execute(statement)
            foreign = sorted(
                name for name in self._table_names() - before if not name.startswith(prefix)
            )
            if foreign:
                raise StoreError(
                    f"plugin {plugin}: tables must be named {prefix}..., got {', '.join(foreign)}"
                )
            self._db.execute(
                "INSERT INTO plugin_schema (plugin, version) VALUES (?, ?) "
                "ON CONFLICT (plugin) DO UPDATE SET version = excluded.version",
                (plugin, len(migrations)),
            )
        log.info("store: plugin %s schema %d -> %d", plugin, version, len(migrations))
        return len(migrations)

    def _table_names(self) -> set[str]:
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows}

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one statement with bound parameters (never format values into `sql`);
        returns the number of rows changed. Outside `transaction()` it commits at once."""
        return self._db.execute(sql, params).rowcount

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Run one SELECT with bound parameters; rows can be indexed by column name."""
        return self._db.execute(sql, params).fetchall()


class PluginTables:
    """One plugin's share of the store: its `<plugin>_...` tables, brought up to
    date at construction (`Store.plugin_schema`), and statements to use them.

    This is what plugins get (`PhoneApi.tables`), not the `Store`: the contacts
    and the other plugins' tables stay out of their reach by name, and the SQL
    they run is their own.
    """

    def __init__(self, store: Store, plugin: str, migrations: Sequence[Sequence[str]]) -> None:
        self._store = store
        self.plugin = plugin
        self.version = store.plugin_schema(plugin, migrations)

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction; rolled back if the block raises (see `Store.transaction`)."""
        return self._store.transaction()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """One statement with bound parameters; the number of rows changed."""
        return self._store.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """One SELECT with bound parameters; rows can be indexed by column name."""
        return self._store.query(sql, params)
