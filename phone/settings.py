"""Reading one TOML table of the config, with errors that name the full key.

Every table of `phone.toml` is read with `Table`: the core's sections
(`phone.config`), a board's `[board.<kind>]` (`Board.validate_settings`) and a
plugin's `[plugins.<name>]`, which the plugin host hands to the plugin's
`create_plugin`. As in Mopidy's config types, one reader gives every table the
same rules and the same wording:

- types as TOML has them: a boolean is not an integer, an integer is not a
  float, a string is never empty;
- an error names the full key path (`plugins.presence.leds.away`,
  `board.rpi.leds.contact-1.red`, `contacts[2].uri`) and shows the value as the
  TOML file spells it (`true`, `'udp'`, `5`);
- an unknown key is refused, with the closest known key (difflib) as a "did you
  mean", or else the list of known keys. A table opened with its `keys` refuses
  unknown ones at once, before any value is read, so that a misspelt key is
  named as such rather than as the problem it causes. A table opened without
  them learns its keys as they are read, and `finish()` refuses the rest; a
  required key found missing there is reported as the misspelling, if there is
  one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date, time
from typing import Any, Literal, TypeVar, overload

from phone.uri import SipUri, SipUriError, parse_sip_uri

Choice = TypeVar("Choice", bound=str | int)

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # TOML 1.0, "Keys"


class ConfigError(ValueError):
    """A configuration value is wrong; `key` is its path (`contacts[2].uri`)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


class Table:
    """One TOML table under check, at key path `path` ("" for the file itself)."""

    def __init__(self, path: str, data: Any, keys: Iterable[str] | None = None) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, f"must be a table, got {describe_value(data)}")
        self.path = path
        self.data: dict[str, Any] = data
        self._known: list[str] = []
        if keys is not None:
            self._known.extend(keys)
            for name in data:
                if name not in self._known:
                    raise self._unknown(name)

    def key(self, name: str) -> str:
        """The full path of key `name` of this table, quoted where TOML would quote it."""
        if not _BARE_KEY.fullmatch(name):
            name = _toml_string(name)
        return f"{self.path}.{name}" if self.path else name

    def __iter__(self) -> Iterator[str]:
        """The keys present, for tables whose keys are data (key names, buttons, plugins)."""
        return iter(list(self.data))

    def __contains__(self, name: object) -> bool:
        return name in self.data

    def take(self, name: str, required: bool = False) -> Any:
        """The raw value, or None when absent (TOML has no null)."""
        if name not in self._known:
            self._known.append(name)
        value = self.data.get(name)
        if value is None and required:
            raise self.missing(name)
        return value

    def missing(self, name: str, why: str | None = None) -> ConfigError:
        """The error for a required key that is absent; when a key nobody has
        read looks like it, that misspelling is the error instead."""
        unread = [other for other in self.data if other not in self._known]
        typo = _closest(name, unread)
        if typo is not None:
            return self._unknown(typo, name)
        return ConfigError(self.key(name), f"missing: {why}" if why else "missing")

    def finish(self) -> None:
        """Refuse the keys nobody read (usually a typo)."""
        for name in self.data:
            if name not in self._known:
                raise self._unknown(name)

    def _unknown(self, name: str, meant: str | None = None) -> ConfigError:
        """`name` is not a key of this table; `meant` is the key it is a typo of."""
        if meant is None:
            meant = _closest(name, self._known)
        if meant is not None:
            return ConfigError(
                self.key(name), f"unknown key (did you mean {describe_value(meant)}?)"
            )
        if self._known:
            return ConfigError(self.key(name), f"unknown key (keys: {', '.join(self._known)})")
        return ConfigError(self.key(name), "unknown key (this table takes none)")

    # -- typed values ---------------------------------------------------
    def table(self, name: str, keys: Iterable[str] | None = None, required: bool = False) -> Table:
        """A sub-table; absent, an empty one."""
        value = self.take(name, required)
        return Table(self.key(name), {} if value is None else value, keys)

    @overload
    def text(self, name: str, default: str) -> str: ...
    @overload
    def text(self, name: str, *, required: Literal[True]) -> str: ...
    @overload
    def text(self, name: str, default: None = None, required: bool = False) -> str | None: ...
    def text(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        """A non-empty string."""
        value = self.take(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(self.key(name), f"must be a string, got {describe_value(value)}")
        if not value.strip():
            raise ConfigError(self.key(name), "must not be empty")
        return value

    @overload
    def integer(self, name: str, low: int, high: int, default: int) -> int: ...
    @overload
    def integer(self, name: str, low: int, high: int, *, required: Literal[True]) -> int: ...
    @overload
    def integer(
        self, name: str, low: int, high: int, default: None = None, required: bool = False
    ) -> int | None: ...
    def integer(
        self, name: str, low: int, high: int, default: int | None = None, required: bool = False
    ) -> int | None:
        """An integer from `low` to `high`; `true` is not 1 and `1.0` is not 1."""
        value = self.take(name, required)
        if value is None:
            return default
        if type(value) is not int or not low <= value <= high:
            raise ConfigError(
                self.key(name),
                f"must be an integer from {low} to {high}, got {describe_value(value)}",
            )
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.take(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(self.key(name), f"must be true or false, got {describe_value(value)}")
        return value

    @overload
    def choice(self, name: str, choices: Iterable[Choice], default: Choice) -> Choice: ...
    @overload
    def choice(
        self, name: str, choices: Iterable[Choice], *, required: Literal[True]
    ) -> Choice: ...
    @overload
    def choice(
        self,
        name: str,
        choices: Iterable[Choice],
        default: None = None,
        required: bool = False,
    ) -> Choice | None: ...
    def choice(
        self,
        name: str,
        choices: Iterable[Choice],
        default: Choice | None = None,
        required: bool = False,
    ) -> Choice | None:
        """One of `choices` (strings, an enum's members, or integers), returned as
        listed there; strings are compared case-insensitively."""
        choices = tuple(choices)
        value = self.take(name, required)
        if value is None:
            return default
        for choice in choices:
            if isinstance(choice, str):
                if isinstance(value, str) and value.lower() == choice.lower():
                    return choice
            elif type(value) is int and value == choice:
                return choice
        listed = [str(choice) for choice in choices]
        message = f"must be one of {', '.join(listed)}, got {describe_value(value)}"
        if isinstance(value, str):
            names = [str(choice) for choice in choices if isinstance(choice, str)]
            hint = _closest(value.lower(), names)
            if hint is not None:
                message += f" (did you mean {describe_value(hint)}?)"
        raise ConfigError(self.key(name), message)

    def array(self, name: str) -> list[Any] | None:
        """An array of anything (each item checked by the caller), or None when absent."""
        value = self.take(name)
        if value is not None and not isinstance(value, list):
            raise ConfigError(self.key(name), f"must be an array, got {describe_value(value)}")
        return value

    def texts(self, name: str) -> list[str]:
        """An array of non-empty strings; absent means empty."""
        value = self.array(name) or []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(
                    f"{self.key(name)}[{index}]",
                    f"must be a non-empty string, got {describe_value(item)}",
                )
        return list(value)

    @overload
    def uri(self, name: str, *, required: Literal[True]) -> SipUri: ...
    @overload
    def uri(self, name: str, required: bool = False) -> SipUri | None: ...
    def uri(self, name: str, required: bool = False) -> SipUri | None:
        """A SIP URI without `?headers`, which make no sense in an address of record."""
        text = self.text(name, required=required)
        if text is None:
            return None
        try:
            uri = parse_sip_uri(text)
        except SipUriError as e:
            raise ConfigError(self.key(name), str(e)) from None
        if uri.headers:
            raise ConfigError(
                self.key(name), f"must not carry URI headers ('?...'): {describe_value(text)}"
            )
        return uri


def describe_value(value: Any) -> str:
    """A value as a TOML file spells it, for error messages: `true`, `5`, `'udp'`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, date | time):
        return value.isoformat()
    return repr(value)


# A TOML basic string's escapes (TOML 1.0, "String").
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    """A literal string ('...') where TOML allows one, else a basic string with escapes."""
    controls = any(_is_control(c) and c != "\t" for c in text)
    if "'" not in text and not controls:
        return f"'{text}'"
    escaped = (_ESCAPES.get(c) or (f"\\u{ord(c):04X}" if _is_control(c) else c) for c in text)
    return '"' + "".join(escaped) + '"'


def _is_control(c: str) -> bool:
    return c < " " or c == "\x7f"


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate `word` is most likely a typo of, if any: for an error's
    "did you mean" (difflib is imported then, not at every start)."""
    import difflib

    return next(iter(difflib.get_close_matches(word, list(candidates), n=1)), None)
