"""The guard on pjsua2's callbacks (phone/pjsua_callback.py): every director
method of the product has it, and on pjmedia's clock thread a callback that
keeps raising is logged once, with nothing printed by SWIG.

The SIP callbacks, with the safe answers pjsua gets when they fail, are
tested in tests/sip/test_callback_guard.py.
"""

from __future__ import annotations

import ast
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

from phone.pjsua_callback import failures, pjsua_callback

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("phone", "plugins", "board")


def _base_names(node: ast.ClassDef) -> set[str]:
    return {ast.unparse(base) for base in node.bases}


def director_classes() -> Iterator[tuple[str, str]]:
    """(module, class) of every class in the product that derives, directly or
    through another of them, from a pjsua2 class (`pj.X` or `pjsua2.X`)."""
    classes: list[tuple[str, ast.ClassDef]] = []
    for package in PRODUCT:
        for path in sorted((REPO / package).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            tree = ast.parse(path.read_text())
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
