"""Reading a board's own config section (`[board.<kind>]`) with errors that name the key.

The core hands each board its section as parsed TOML and leaves the checking to
the board class (`validate_settings`), as Mopidy leaves an extension's schema to
the extension. Every problem is a `ConfigError` carrying the full dotted key,
e.g. `board.rpi.display.driver: must be one of ssd1306, sh1106, got 'ssd1309'`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from phone.config import ConfigError, describe_value


class Section:
    """One TOML table under check: knows its dotted key and which keys were read,
    so that `finish()` can name a key nobody asked for (usually a typo)."""

    def __init__(self, key: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(key, f"must be a table, got {describe_value(data)}")
        self.path = key
        self.data: dict[str, Any] = data
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}"

    def take(self, name: str) -> Any:
        """The raw value, or None when absent (TOML has no null)."""
        self._read.add(name)
        return self.data.get(name)

    def section(self, name: str) -> Section:
        value = self.take(name)
        return Section(self.key(name), {} if value is None else value)

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.take(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(self.key(name), f"must be a string, got {describe_value(value)}")
        if not value.strip():
            raise ConfigError(self.key(name), "must not be empty")
        return value

    def integer(self, name: str, low: int, high: int, default: int | None = None) -> int | None:
        value = self.take(name)
        if value is None:
            return default
        if type(value) is not int or not low <= value <= high:
            raise ConfigError(
                self.key(name),
                f"must be an integer from {low} to {high}, got {describe_value(value)}",
            )
        return value

    def choice(self, name: str, choices: Iterable[str], default: str) -> str:
        """One of `choices`, compared case-insensitively and returned in lower case."""
        choices = tuple(choices)
        value = self.take(name)
        if value is None:
            return default
        if not isinstance(value, str) or value.lower() not in choices:
            raise ConfigError(
                self.key(name), f"must be one of {', '.join(choices)}, got {describe_value(value)}"
            )
        return value.lower()

    def texts(self, name: str) -> list[str]:
        """An array of non-empty strings; absent means empty."""
        value = self.take(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(self.key(name), f"must be an array, got {describe_value(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(
                    f"{self.key(name)}[{index}]",
                    f"must be a non-empty string, got {describe_value(item)}",
                )
        return list(value)

    def finish(self) -> None:
        for name in self.data:
            if name not in self._read:
                hint = difflib.get_close_matches(name, sorted(self._read), n=1)
                suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ConfigError(self.key(name), f"unknown key{suffix}")
