"""The XCAP documents last read, in the plugin's SQLite tables.

The buttons themselves are kept by the core (`PhoneApi.replace_contacts`), so
a phone whose server is down starts with them at once. What is kept here is
the resource-lists document and its ETag, so that the first read after a
start is a conditional GET (304 when nothing changed) and the contacts the
plugin wrote last are known before the server answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from phone.api import PluginTables

MIGRATIONS = (("CREATE TABLE xcap_documents (name TEXT PRIMARY KEY, etag TEXT, body BLOB)",),)


@dataclass(frozen=True)
class Cached:
    body: bytes
    etag: str | None


class DocumentCache:
    def __init__(self, tables: PluginTables) -> None:
        self._tables = tables

    def load(self, name: str) -> Cached | None:
        rows = self._tables.query("SELECT etag, body FROM xcap_documents WHERE name = ?", (name,))
        return Cached(bytes(rows[0]["body"]), rows[0]["etag"]) if rows else None

    def save(self, name: str, body: bytes, etag: str | None) -> None:
        with self._tables.transaction():
            self._tables.execute(
                "INSERT OR REPLACE INTO xcap_documents (name, etag, body) VALUES (?, ?, ?)",
                (name, etag, body),
            )
