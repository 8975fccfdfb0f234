"""The guard on pjsua2's callbacks (phone/pjsua_callback.py): every director
method of the product has it, every C callback the product gives pjsip through
ctypes is made by `c_callback`, and on pjmedia's clock thread a callback that
keeps raising is logged once, with nothing printed by SWIG.

The SIP callbacks, with the safe answers pjsua gets when they fail, are
tested in tests/sip/test_callback_guard.py.
"""

from __future__ import annotations

import ast
import ctypes
import importlib
import inspect
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phone.pjsua_callback import c_callback, failures, pjsua_callback

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("phone", "plugins", "board")
CALLBACK_TYPES_MODULE = REPO / "phone" / "pjproject.py"
GUARD_MODULE = REPO / "phone" / "pjsua_callback.py"


def product_modules() -> Iterator[tuple[Path, ast.Module]]:
    for package in PRODUCT:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path, ast.parse(path.read_text())


def _base_names(node: ast.ClassDef) -> set[str]:
    return {ast.unparse(base) for base in node.bases}


def director_classes() -> Iterator[tuple[str, str]]:
    """(module, class) of every class in the product that derives, directly or
    through another of them, from a pjsua2 class (`pj.X` or `pjsua2.X`)."""
    classes: list[tuple[str, ast.ClassDef]] = []
    for path, tree in product_modules():
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        classes += [(module, n) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    directors: set[str] = set()
    grew = True
    while grew:
        grew = False
        for _, node in classes:
            bases = _base_names(node)
            is_director = any(b.startswith(("pj.", "pjsua2.")) for b in bases)
            if node.name not in directors and (is_director or bases & directors):
                directors.add(node.name)
                grew = True
    return ((module, node.name) for module, node in classes if node.name in directors)


def test_every_pjsua2_callback_of_the_product_is_guarded() -> None:
    pytest.importorskip("pjsua2")
    guard_code = pjsua_callback()(lambda obj, prm: None).__code__
    checked, unguarded = [], []
    for module, name in director_classes():
        cls = getattr(importlib.import_module(module), name)
        pj_base = next(c for c in cls.__mro__ if c.__module__.startswith("pjsua2"))
        for attr, value in vars(cls).items():
            if attr.startswith("__") or not inspect.isfunction(value):
                continue
            if hasattr(pj_base, attr):  # an override: pjsua2 calls it (a director method)
                checked.append(f"{name}.{attr}")
                if value.__code__ is not guard_code:
                    unguarded.append(f"{module}.{name}.{attr}")
    assert unguarded == []
    # The scan sees the callbacks it must (so it cannot pass by seeing none).
    assert {"SipAccount.onIncomingCall", "_PjCall.onCallState", "SipTraceWriter.write"} <= set(
        checked
    )
    assert {"_AlsaPort.onFrameRequested", "_AlsaPort.onFrameReceived"} <= set(checked)


def _called_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Subscript):
        func = func.value  # INV_CALLBACK_TYPES[name](...)
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def c_callback_sites() -> tuple[set[str], list[str]]:
    """What the product hands pjsip as C callbacks through `c_callback` (its
    function argument), and every place that makes one otherwise: a ctypes
    function type (phone.pjproject's, or a local name for one) called with an
    argument outside the guard's module, or a function type made outside
    phone.pjproject (the scan would not know it)."""
    from _ctypes import CFuncPtr

    from phone import pjproject

    types = {
        n for n, v in vars(pjproject).items() if isinstance(v, type) and issubclass(v, CFuncPtr)
    }
    types.add("INV_CALLBACK_TYPES")
    guarded: set[str] = set()
    unguarded: list[str] = []
    for path, tree in product_modules():
        where = path.relative_to(REPO)
        aliases = set(types)
        for node in ast.walk(tree):  # kind = INV_CALLBACK_TYPES[name]
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript | ast.Name):
                value = node.value.value if isinstance(node.value, ast.Subscript) else node.value
                if isinstance(value, ast.Name) and value.id in types:
                    aliases.update(t.id for t in node.targets if isinstance(t, ast.Name))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _called_name(node)
            if name == "c_callback" and len(node.args) > 1:
                guarded.add(ast.unparse(node.args[1]))
            elif name == "CFUNCTYPE" and path != CALLBACK_TYPES_MODULE:
                unguarded.append(f"{where}:{node.lineno} makes a callback type")
            elif name in aliases and (node.args or node.keywords) and path != GUARD_MODULE:
                unguarded.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return guarded, unguarded


def test_every_c_callback_of_the_product_is_guarded() -> None:
    guarded, unguarded = c_callback_sites()
    assert unguarded == []
    # The scan sees the callbacks it must (so it cannot pass by seeing none).
    assert {
        "self._on_rx_request",  # RawSip: the request hook
        "self._on_tx",  # RawSip: every message sent
        "self._on_send_done",  # RawSip: a request's transaction ended
        "self._on_dropped",  # the transport manager's dropped data
        "route",  # the invite-session callbacks of chat-only sessions
    } <= guarded


def test_a_c_callback_that_raises_gives_its_result_and_is_logged(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Called from C (ctypes' qsort): the result C gets after a failure, one ERROR line."""
    compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)

    class Sorter:
        def compare(self, a: int, b: int) -> int:
            raise ValueError("a bug in the comparison")

    sorter = Sorter()
    pointer = c_callback(compare, sorter.compare, 0)
    values = (ctypes.c_int * 3)(3, 1, 2)
    ctypes.CDLL(None).qsort(values, 3, ctypes.sizeof(ctypes.c_int), pointer)
    assert sorted(values) == [1, 2, 3]  # qsort ran to its end on the results it got
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        (__name__, "Sorter.compare failed")
    ] * failures(sorter)["compare"]
    assert failures(sorter)["compare"] >= 2
    assert "Exception ignored" not in capfd.readouterr().err
    with pytest.raises(TypeError, match="returns a value"):
        c_callback(compare, sorter.compare)


def test_a_clock_thread_callback_that_keeps_raising_is_logged_once(
    pj_endpoint: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pjmedia's clock sends an idle bridge port a frame every 20 ms."""
    pytest.importorskip("pjsua2")
    from phone.audio.bridge_port import BridgePort

    class BrokenSpeaker(BridgePort):
        @pjsua_callback(log_repeats=False)
        def onFrameReceived(self, frame: Any) -> None:  # noqa: N802 (pjsua2 callback)
            raise ValueError("a bug on the clock thread")

    monkeypatch.delattr(sys, "last_traceback", raising=False)
    # The clock ticks only while a sound device is open: an earlier test's
    # ended call may have let pjsua close the session's null device when idle.
    pj_endpoint.audDevManager().setNullDev()
    port = BrokenSpeaker("broken")
    try:
        deadline = time.monotonic() + 5
        while failures(port)["onFrameReceived"] < 5:
            assert time.monotonic() < deadline, "the clock did not call the port"
            time.sleep(0.02)
    finally:
        port.destroy()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [(r.name, r.getMessage()) for r in errors] == [
        (__name__, "BrokenSpeaker.onFrameReceived failed")
    ]
    assert errors[0].thread != threading.get_ident()  # logged on the clock thread
    assert not hasattr(sys, "last_traceback")
    assert "Traceback" not in capfd.readouterr().err


def test_a_fallback_that_fails_too_is_logged_and_goes_no_further(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(obj: object, prm: list[str]) -> None:
        prm.append("refused")
        raise OSError("the refusal failed")

    class Account:
        @pjsua_callback(fallback=refuse)
        def onIncomingCall(self, prm: list[str]) -> None:  # noqa: N802 (pjsua2 callback)
            raise RuntimeError("the handler failed")

    prm: list[str] = []
    Account().onIncomingCall(prm)  # raises nothing
    assert prm == ["refused"]
    assert [
        (r.levelno, r.getMessage(), str(r.exc_info and r.exc_info[1])) for r in caplog.records
    ] == [
        (logging.ERROR, "Account.onIncomingCall failed", "the handler failed"),
        (logging.ERROR, "Account.onIncomingCall: its fallback failed too", "the refusal failed"),
    ]
