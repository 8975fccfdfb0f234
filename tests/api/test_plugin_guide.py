"""The plugin guide (plugins/README.md) describes every hook and every `PhoneApi`
member, as datasette's test_docs checks its plugin hooks, and its example is
the example plugin's code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from phone import hookspecs
from phone.api import PhoneApi

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "plugins" / "README.md"
EXAMPLE = ROOT / "tests" / "example_plugin" / "simplephone_missed_calls" / "__init__.py"


def hook_names() -> list[str]:
    return [
        name
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, f"{hookspecs.PROJECT}_spec")
    ]


def api_members() -> list[str]:
    return [name for name in vars(PhoneApi) if not name.startswith("_")]


def undescribed(names: list[str], guide: str) -> list[str]:
    """The names the guide never writes as code: `name` or `name(...)`."""
    return [name for name in names if not re.search(rf"`{re.escape(name)}[`(]", guide)]


def test_the_check_sees_a_missing_name() -> None:
    guide = "`dial(uri)` places a call; `dnd` tells whether do-not-disturb is on."
    assert undescribed(["dial", "dnd", "end_call"], guide) == ["end_call"]


def test_every_hook_is_in_the_guide() -> None:
    names = hook_names()
    assert {"phone_started", "call_changed", "button_pressed"} <= set(names)
    assert undescribed(names, GUIDE.read_text()) == []


def test_every_phone_api_member_is_in_the_guide() -> None:
    names = api_members()
    assert {"subscribe", "calls", "tables", "account"} <= set(names)
    assert undescribed(names, GUIDE.read_text()) == []


def test_the_guide_shows_the_example_plugin_as_it_is() -> None:
    """Each block of Python in the guide is a piece of the example module."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    assert blocks
    example = EXAMPLE.read_text()
    for block in blocks:
        for piece in block.split("\n\n\n"):
            assert piece.strip() in example, f"not in {EXAMPLE.name}:\n{piece}"
