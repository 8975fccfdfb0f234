"""The settings reader that every table of the config goes through (phone.settings)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

import pytest

from phone.settings import ConfigError, Table, describe_value


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


def error(read: Any, data: dict[str, Any], keys: tuple[str, ...] | None = None) -> str:
    """What reading `data` at `plugins.demo` with `read(table)` refuses, as the user sees it."""
    with pytest.raises(ConfigError) as caught:
        table = Table("plugins.demo", data, keys)
        read(table)
        table.finish()
    assert str(caught.value) == f"{caught.value.key}: {caught.value.message}"
    return str(caught.value)


@pytest.mark.parametrize(
    ("value", "spelt"),
    [
        (True, "true"),
        (False, "false"),
        (5, "5"),
        (2.5, "2.5"),
        ("udp", "'udp'"),
        ("it's", '"it\'s"'),
        ('C:\\path "x"', "'C:\\path \"x\"'"),
        ("two\nlines", '"two\\nlines"'),
        ("bell\x07", '"bell\\u0007"'),
        ({"a": 1}, "a table"),
        ([1, 2], "an array"),
        (date(2024, 5, 1), "2024-05-01"),
    ],
)
def test_values_are_shown_as_toml_spells_them(value: Any, spelt: str) -> None:
    assert describe_value(value) == spelt


def test_defaults_and_present_values() -> None:
    table = Table("board.demo", {"name": "x", "count": 3, "on": False, "mode": "GREEN"})
    assert table.text("name") == "x"
    assert table.text("absent") is None
    assert table.text("other", "fallback") == "fallback"
    assert table.integer("count", 1, 5) == 3
    assert table.integer("size", 1, 5, 4) == 4
    assert table.boolean("on", True) is False
    assert table.choice("mode", Colour) is Colour.GREEN
    assert table.choice("shade", Colour, Colour.RED) is Colour.RED
    assert table.texts("names") == []
    assert table.table("sub").data == {}
    table.finish()


@pytest.mark.parametrize(
    ("read", "data", "message"),
    [
        (
            lambda t: t.integer("port", 0, 9),
            {"port": True},
            "plugins.demo.port: must be an integer from 0 to 9, got true",
        ),
        (
            lambda t: t.integer("port", 0, 9),
            {"port": 1.0},
            "plugins.demo.port: must be an integer from 0 to 9, got 1.0",
        ),
        (
            lambda t: t.boolean("on", False),
            {"on": 1},
            "plugins.demo.on: must be true or false, got 1",
        ),
        (lambda t: t.text("name"), {"name": " "}, "plugins.demo.name: must not be empty"),
        (
            lambda t: t.text("name", required=True),
            {},
            "plugins.demo.name: missing",
        ),
        (
            lambda t: t.choice("colour", Colour),
            {"colour": "gren"},
            "plugins.demo.colour: must be one of red, green, got 'gren' (did you mean 'green'?)",
        ),
        (
            lambda t: t.choice("rate", (8000, 16000)),
            {"rate": "8000"},
            "plugins.demo.rate: must be one of 8000, 16000, got '8000'",
        ),
        (
            lambda t: t.choice("rate", (0, 1)),
            {"rate": False},
            "plugins.demo.rate: must be one of 0, 1, got false",
        ),
        (
            lambda t: t.texts("names"),
            {"names": ["a", ""]},
            "plugins.demo.names[1]: must be a non-empty string, got ''",
        ),
        (
            lambda t: t.array("names"),
            {"names": "a"},
            "plugins.demo.names: must be an array, got 'a'",
        ),
        (
            lambda t: t.table("leds").text("away"),
            {"leds": {"away": 3}},
            "plugins.demo.leds.away: must be a string, got 3",
        ),
        (
            lambda t: t.table("leds"),
            {"leds": [1]},
            "plugins.demo.leds: must be a table, got an array",
        ),
        (
            lambda t: t.uri("uri"),
            {"uri": "sip:bob@example.com?subject=hi"},
            "plugins.demo.uri: must not carry URI headers ('?...'): 'sip:bob@example.com?subject=hi'",
        ),
    ],
)
def test_bad_values_name_the_full_key(read: Any, data: dict[str, Any], message: str) -> None:
    assert error(read, data) == message


def test_unknown_keys_get_a_suggestion_or_the_list() -> None:
    def read(table: Table) -> None:
        table.integer("max_entries", 1, 9)
        table.boolean("enabled", True)

    assert error(read, {"max_entires": 2}) == (
        "plugins.demo.max_entires: unknown key (did you mean 'max_entries'?)"
    )
    assert error(read, {"colour": 2}) == (
        "plugins.demo.colour: unknown key (keys: max_entries, enabled)"
    )
    assert error(lambda table: None, {"colour": 2}) == (
        "plugins.demo.colour: unknown key (this table takes none)"
    )


def test_declared_keys_refuse_a_typo_before_anything_is_read() -> None:
    def read(table: Table) -> None:
        raise AssertionError("read a table with an unknown key")

    assert error(read, {"pasword": "x"}, ("uri", "password")) == (
        "plugins.demo.pasword: unknown key (did you mean 'password'?)"
    )


def test_a_required_key_that_is_misspelt_is_named_as_the_typo() -> None:
    def read(table: Table) -> None:
        table.text("password", required=True)

    assert error(read, {"pasword": "x"}) == (
        "plugins.demo.pasword: unknown key (did you mean 'password'?)"
    )

    def needs_inputs(table: Table) -> None:
        if table.texts("inputs") == []:
            raise table.missing("inputs", "keys are mapped but no input device")

    assert error(needs_inputs, {"input": ["x"]}) == (
        "plugins.demo.input: unknown key (did you mean 'inputs'?)"
    )
    assert error(needs_inputs, {}) == (
        "plugins.demo.inputs: missing: keys are mapped but no input device"
    )


def test_keys_that_are_data_are_iterated() -> None:
    table = Table("board.rpi.keys", {"KEY_F1": "contact-1", "KEY_ENTER": "answer"})
    assert {name: table.text(name) for name in table} == {
        "KEY_F1": "contact-1",
        "KEY_ENTER": "answer",
    }
    assert "KEY_F1" in table
    table.finish()


def test_keys_are_quoted_where_toml_quotes_them() -> None:
    table = Table("board.rpi.leds", {})
    assert table.key("contact-1") == "board.rpi.leds.contact-1"
    assert table.key("KEY_F1") == "board.rpi.leds.KEY_F1"
    assert table.key("a.b") == "board.rpi.leds.'a.b'"
    assert table.key("") == "board.rpi.leds.''"
    assert table.key("it's") == 'board.rpi.leds."it\'s"'


def test_the_file_itself_has_bare_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        Table("", {"sound": {}}, ("account", "board"))
    assert str(caught.value) == "sound: unknown key (keys: account, board)"
