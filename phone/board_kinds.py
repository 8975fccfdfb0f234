"""The installed boards, by kind: the `[board] kind` choices and the class each
names. The built-in ones (`board/`) are named here and imported only when
chosen; boards installed apart come through the `simplephone.boards`
entry-point group. Apart from the board interface (phone.board), so that
reading the config and the command line, before the first REGISTER, does not
build it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from phone.board import Board

BOARD_GROUP = "simplephone.boards"
# The boards of this project, as entry-point values. They are found without
# reading the installed packages' metadata (`importlib.metadata` costs tens of
# ms at start); a board installed apart under one of these names is ignored.
BUILTIN_BOARDS = {
    "emulator": "board.emulator:EmulatorBoard",
    "rpi": "board.rpi:RpiBoard",
    "virtual": "board.virtual:VirtualBoard",
}


def board_kinds() -> tuple[str, ...]:
    """The names of the installed boards, sorted: the `[board] kind` choices."""
    return tuple(sorted(BUILTIN_BOARDS.keys() | _board_entry_points().keys()))


def is_board_kind(kind: str) -> bool:
    """Whether `kind` names an installed board; a built-in one without reading
    the installed packages' metadata."""
    return kind in BUILTIN_BOARDS or kind in _board_entry_points()


def board_class(kind: str) -> type[Board]:
    """The board implementation named `kind`: a built-in one, else one of the
    `simplephone.boards` entry points."""
    if kind in BUILTIN_BOARDS:
        module, _, name = BUILTIN_BOARDS[kind].partition(":")
        cls = getattr(importlib.import_module(module), name)
    else:
        found = _board_entry_points()
        if kind not in found:
            raise LookupError(f"no board named {kind!r} (known: {', '.join(board_kinds())})")
        cls = found[kind].load()
    from phone.board import Board

    if not (isinstance(cls, type) and issubclass(cls, Board)):
        raise LookupError(f"board {kind!r} does not implement phone.board.Board")
    return cls


def _board_entry_points() -> dict[str, EntryPoint]:
    """The boards installed apart, by name (reads every installed package's metadata)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=BOARD_GROUP)}
