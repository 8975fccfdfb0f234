"""The guard on every Python method that pjsua2 calls back (a SWIG director).

pjsua2's C++ side calls the phone through SWIG directors: `Account.onRegState`,
`Call.onCallState`, `AudioMediaPort.onFrameRequested`, `LogWriter.write`...
When such a method raises, the binding prints the exception with
`PyErr_Print` and returns to pjsua as if nothing happened: the traceback goes
to stderr, outside logging and without saying which callback failed, and
stays in `sys.last_traceback` with the callback's frames, keeping its
objects (a pjsua2 `Call`...) alive past their owner (`phone.sip.lifetime`).

`@pjsua_callback(...)` on each such method catches the exception instead and
logs it once at ERROR, under the module's logger, with the class and
callback names; then its `fallback`, if any, leaves pjsua in a sane state
(an incoming call whose handler failed is refused 500, a REFER 500). The
exception never reaches the binding: nothing is printed, nothing is kept.

Clock-thread callbacks (`onFrameRequested`/`onFrameReceived`, every 20 ms)
take `log_repeats=False`: the first failure of each callback on each object
is logged, later ones only counted, so a bug there does not write fifty lines
a second. The guard itself touches only its own object, so it is as safe on
pjmedia's clock thread as on the loop thread.

pjsip's own C callbacks, which the phone gives it through ctypes (the
request hook's `on_rx_request`/`on_tx_request`, a request's completion, the
dropped-data callback, the invite-session callbacks of chat-only sessions),
are guarded the same way by `c_callback`: ctypes would print the exception
("Exception ignored on calling ctypes callback function") and hand pjsip an
undefined result. Each is made there, never with its ctypes type directly
(tests/test_pjsua_callback.py checks the product for that), and returns its
fixed `result` to pjsip after a failure (0 from the request hook: pjsip goes
on with the message).

It lives beside `phone.sip` and `phone.audio` so both can use it, and imports
nothing that the first REGISTER does not already need.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar, cast

Callback = TypeVar("Callback", bound=Callable[[Any, Any], None])
Fallback = Callable[[Any, Any], None]


def failures(obj: object) -> Counter[str]:
    """How many times each guarded callback of `obj` has raised (by name)."""
    counts: Counter[str] = vars(obj).setdefault("_pjsua_callback_failures", Counter())
    return counts


def pjsua_callback(
    fallback: Fallback | None = None, *, log_repeats: bool = True
) -> Callable[[Callback], Callback]:
    """Guard a director method `(self, prm) -> None` (see the module docstring).

    `fallback(self, prm)` runs after a failure, to give pjsua a safe answer;
    with `log_repeats=False` only the first failure per object is logged."""

    def decorate(method: Callback) -> Callback:
        log = logging.getLogger(method.__module__)
        name = method.__name__

        @functools.wraps(method)
        def guarded(self: Any, prm: Any) -> None:
            try:
                method(self, prm)
            except Exception:
                _report(self, name, log, log_repeats)
                if fallback is not None:
                    _run_fallback(fallback, self, prm, log, name)

        return cast(Callback, guarded)

    return decorate


def c_callback(
    kind: Any,
    function: Callable[..., Any],
    result: int | None = None,
    *,
    owner: object = None,
    name: str | None = None,
) -> Any:
    """`function` as a C function pointer of the ctypes type `kind`, guarded
    (see the module docstring): after a failure pjsip gets `result`, which a
    callback returning an int must have.

    A bound method is logged as its class and name; anything else needs
    `owner` (whose failures are counted) and `name`. Keep the pointer as long
    as pjsip may call it."""
    if kind._restype_ is not None and result is None:
        raise TypeError(f"{kind.__name__} returns a value: give the result after a failure")
    owner = owner if owner is not None else getattr(function, "__self__", None)
    name = name or function.__name__
    if owner is None:
        raise TypeError(f"{name}: a C callback needs an owner object")
    log = logging.getLogger(function.__module__)

    def guarded(*args: Any) -> Any:
        try:
            return function(*args)
        except Exception:
            _report(owner, name, log, True)
            return result

    return kind(guarded)


def _report(obj: Any, name: str, log: logging.Logger, log_repeats: bool) -> None:
    """Count a failure of `obj`'s callback `name` and log it (inside `except`)."""
    counts = failures(obj)
    counts[name] += 1
    if log_repeats or counts[name] == 1:
        log.exception("%s.%s failed", type(obj).__name__, name)


def _run_fallback(fallback: Fallback, obj: Any, prm: Any, log: logging.Logger, name: str) -> None:
    try:
        fallback(obj, prm)
    except Exception:
        log.exception("%s.%s: its fallback failed too", type(obj).__name__, name)
