"""Plugins use `PhoneApi` only: no module of a plugin imports the core's insides.

A plugin may import `phone.api` (the phone, and the types it hands out),
`phone.hookspecs` (hookimpl, ConfigError, PluginUnavailable), the SIMPLE
documents of `phone.payloads`, the settings reader `phone.settings` (what
`create_plugin` gets), `phone.uri`, the MSRP protocol library
`phone.msrp` and the XCAP client `phone.xcap`. Anything else of `phone`
(`phone.phone`, `phone.sip.*`, the board, the store, the config) and pjsua2
is the core's: the test names the file, line and module of each such import.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = (
    "phone.api",
    "phone.hookspecs",
    "phone.payloads",
    "phone.settings",
    "phone.uri",
    "phone.msrp",
    "phone.xcap",
)
PLUGIN_SOURCES = (
    ROOT / "plugins",
    ROOT / "tests" / "example_plugin",
    ROOT / "tests" / "api" / "probe_plugin.py",
)


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every absolute import, `from phone import x` as `phone.x`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "phone":
                found += [(node.lineno, f"phone.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def forbidden_imports(source: str) -> list[tuple[int, str]]:
    """The imports of `source` that a plugin may not make."""
    bad = []
    for line, module in _imported(ast.parse(source)):
        top = module.split(".")[0]
        public = any(module == p or module.startswith(p + ".") for p in PUBLIC)
        if top == "pjsua2" or (top == "phone" and not public):
            bad.append((line, module))
    return bad


def plugin_files() -> list[Path]:
    files: list[Path] = []
    for source in PLUGIN_SOURCES:
        files += sorted(source.rglob("*.py")) if source.is_dir() else [source]
    return files


def test_the_checker_finds_each_kind_of_forbidden_import() -> None:
    source = (
        "import pjsua2\n"
        "from phone.sip.subscription import Subscription\n"
        "from phone import phone, api\n"
        "import phone.store\n"
        "from phone.api import PhoneApi\n"
        "from phone.payloads import pidf\n"
        "from plugins.presence import own\n"
    )
    assert forbidden_imports(source) == [
        (1, "pjsua2"),
        (2, "phone.sip.subscription"),
        (3, "phone.phone"),
        (4, "phone.store"),
    ]


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_imports_only_the_public_api(path: Path) -> None:
    bad = forbidden_imports(path.read_text())
    where = [f"{path.relative_to(ROOT)}:{line} imports {module}" for line, module in bad]
    assert not where, (
        "plugins use phone.api only (and " + ", ".join(PUBLIC[1:]) + "):\n" + ("\n".join(where))
    )


def test_every_built_in_plugin_is_checked() -> None:
    """Each plugin of pyproject's entry points is among the files checked above."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    modules = project["entry-points"]["simplephone.plugins"].values()
    checked = set(plugin_files())
    for module in modules:
        package = ROOT.joinpath(*module.split(":")[0].split("."))
        assert package / "__init__.py" in checked or package.with_suffix(".py") in checked
