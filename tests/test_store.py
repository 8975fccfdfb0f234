"""The SQLite store: WAL mode, contacts per source across reopening, plugin schemas."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from phone.store import MIGRATIONS, Store, StoredContact, StoreError


def test_creates_directories_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "state" / "simplephone" / "phone.db"
    with Store(path) as store:
        assert store.journal_mode == "wal"
        assert store.schema_version == len(MIGRATIONS)
        assert store.query("PRAGMA synchronous")[0][0] == 1  # NORMAL
    assert path.exists()
    # WAL is a property of the file: a plain connection sees it too.
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_replace_contacts_per_source_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "phone.db"
    with Store(path) as store:
        store.replace_contacts("config", [("Bob", "sip:bob@x.org"), ("Carol", "sip:carol@x.org")])
        store.replace_contacts("xcap", [("Dave", "sip:dave@x.org")])
        store.replace_contacts("config", [("Erin", "sip:erin@x.org")])
    with Store(path) as store:
        assert store.contacts("config") == [StoredContact(0, "Erin", "sip:erin@x.org", "config")]
        assert store.contacts("xcap") == [StoredContact(0, "Dave", "sip:dave@x.org", "xcap")]
        assert [c.name for c in store.contacts()] == ["Erin", "Dave"]
        store.replace_contacts("xcap", [])
        assert store.contacts("xcap") == []


def test_busy_lamp_fields_are_kept_per_contact(tmp_path: Path) -> None:
    path = tmp_path / "phone.db"
    with Store(path) as store:
        store.replace_contacts(
            "xcap", [("Bob", "sip:bob@x.org"), ("Carol", "sip:carol@x.org")], blf={"sip:bob@x.org"}
        )
    with Store(path) as store:
        assert [(c.name, c.blf) for c in store.contacts("xcap")] == [
            ("Bob", True),
            ("Carol", False),
        ]


def test_a_first_version_store_gets_the_busy_lamp_column(tmp_path: Path) -> None:
    """A store written by the previous firmware (schema 1) keeps its contacts, without BLF."""
    path = tmp_path / "phone.db"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO contacts VALUES ('config', 0, 'Bob', 'sip:bob@x.org')")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.contacts() == [StoredContact(0, "Bob", "sip:bob@x.org", "config", False)]


def test_replace_contacts_is_atomic(tmp_path: Path) -> None:
    with Store(tmp_path / "phone.db") as store:
        store.replace_contacts("config", [("Bob", "sip:bob@x.org")])
        bad: list[Any] = [("Carol", "sip:carol@x.org"), (None, "sip:x@y")]  # name NOT NULL
        with pytest.raises(sqlite3.IntegrityError):
            store.replace_contacts("config", bad)
        assert [c.name for c in store.contacts("config")] == ["Bob"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "phone.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this firmware knows"):
        Store(path)


def test_plugin_schema_migrates_step_by_step(tmp_path: Path) -> None:
    path = tmp_path / "phone.db"
    first = (("CREATE TABLE demo_items (id INTEGER PRIMARY KEY, label TEXT)",),)
    second = (*first, ("ALTER TABLE demo_items ADD COLUMN weight REAL",))
    with Store(path) as store:
        assert store.plugin_schema("demo", first) == 1
        assert store.execute("INSERT INTO demo_items (label) VALUES (?)", ("one",)) == 1
        assert store.plugin_schema("demo", first) == 1  # already there: nothing runs
    with Store(path) as store:
        assert store.plugin_schema("demo", second) == 2
        store.execute("UPDATE demo_items SET weight = :w WHERE label = :l", {"w": 2.5, "l": "one"})
        rows = store.query("SELECT label, weight FROM demo_items")
        assert [(row["label"], row["weight"]) for row in rows] == [("one", 2.5)]
        with pytest.raises(StoreError, match="newer than the plugin knows"):
            store.plugin_schema("demo", first)


def test_plugin_tables_must_carry_the_plugin_prefix(tmp_path: Path) -> None:
    with Store(tmp_path / "phone.db") as store:
        with pytest.raises(StoreError, match="tables must be named demo_..., got items"):
            store.plugin_schema("demo", (("CREATE TABLE items (id INTEGER)",),))
        # The failed migration left nothing behind.
        assert store.query("SELECT name FROM sqlite_master WHERE name = 'items'") == []
        assert store.query("SELECT * FROM plugin_schema") == []
        with pytest.raises(ValueError, match="cannot prefix SQL table names"):
            store.plugin_schema("my-plugin", (("CREATE TABLE x (id INTEGER)",),))


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    with Store(tmp_path / "phone.db") as store:
        store.plugin_schema("demo", (("CREATE TABLE demo_n (n INTEGER)",),))
        with pytest.raises(RuntimeError), store.transaction():
            store.execute("INSERT INTO demo_n VALUES (1)")
            raise RuntimeError("abandon")
        assert store.query("SELECT count(*) FROM demo_n")[0][0] == 0
