"""A child that writes contacts and call history in a loop until it is killed.

Each iteration `n` replaces the config contacts with contact `n` and records
call `n` in the call_log plugin's table, each in its own transaction, then
prints `n`: a printed number is a committed one. Run by tests/test_store_kill.py.
"""

from __future__ import annotations

import sys

from phone.calls import CallInfo, CallState, Direction
from phone.store import PluginTables, Store
from plugins.call_log import MIGRATIONS, PLUGIN, record


def contact_uri(n: int) -> str:
    return f"sip:c{n}@example.test"


def main(path: str, first: int) -> None:
    with Store(path) as store:
        tables = PluginTables(store, PLUGIN, MIGRATIONS)
        n = first
        while True:
            store.replace_contacts("config", [(f"Contact {n}", contact_uri(n))])
            call = CallInfo(
                n, contact_uri(n), None, Direction.OUT, CallState.DISCONNECTED, float(n)
            )
            call.ended_at = n + 1.0
            record(tables, call, max_entries=50)
            print(n, flush=True)
            n += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
