"""The one ctypes binding to pjproject: every C function the phone calls is declared there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from phone import pjproject

pytest.importorskip("pjsua2")

PHONE = Path(__file__).resolve().parent.parent / "phone"
C_CALL = re.compile(r"\.(pj[a-z]*_\w+)\(")


def test_every_declared_function_is_exported_by_the_wheel() -> None:
    assert pjproject.missing(*pjproject.PROTOTYPES) == []


def test_every_c_function_the_phone_calls_has_its_prototype() -> None:
    """An undeclared function would return a C int: a pointer cut to 32 bits."""
    called = {
        (name, path.relative_to(PHONE.parent).as_posix())
        for path in PHONE.rglob("*.py")
        for name in C_CALL.findall(path.read_text())
    }
    assert called, "the scan found no C calls at all"
    assert sorted((n, p) for n, p in called if n not in pjproject.PROTOTYPES) == []


def test_library_is_opened_once() -> None:
    assert pjproject.library() is pjproject.library()
    lib = pjproject.library()
    assert lib.pjsua_pool_create.restype is pjproject.PROTOTYPES["pjsua_pool_create"][0]


def test_only_the_binding_opens_the_library() -> None:
    opened = sorted(
        path.relative_to(PHONE.parent).as_posix()
        for path in PHONE.rglob("*.py")
        if "CDLL(" in path.read_text()
    )
    assert opened == ["phone/pjproject.py"]
