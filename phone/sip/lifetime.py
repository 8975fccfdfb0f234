"""pjsua2 objects end while pjsua lives, whoever still holds them.

A pjsua2 object's C++ destructor calls into pjsua: `~Call` clears the call's
user data (`pjsua_call_set_user_data`, which asserts the call id against
`maxCalls`), `~AudioMediaPlayer` and `~AudioMediaRecorder` remove their bridge
port. CPython runs the destructor when the last reference goes, and after
`libDestroy` pjsua's state is zeroed: the assertion fails and the process
aborts (SIGABRT, exit 134), at exit or whenever the object is dropped.

Dropping the owner's reference is not enough to avoid that, as others may
hold the object without knowing it: the log record of an exception raised
in a pjsua2 callback (`phone.pjsua_callback`) holds the callback's frame and
so its `self` as long as a handler keeps the record; pytest keeps a failed
test's traceback in `sys.last_traceback`; a plugin can keep one too. So each owner
deletes its pjsua2 objects explicitly with `delete_now` before `libDestroy`:
`SipCall` its Call, `SipAccount` itself, `PhoneAudio` its WAV player and
recorder. The C++ destructor runs then, and the Python object loses its C++
half (SWIG's `this`): a later pjsua2 method on it raises TypeError instead of
touching freed memory or a destroyed pjsua, and its own Python attributes
stay readable.
"""

from __future__ import annotations

from typing import Any


class SipStackStopped(RuntimeError):
    """A call or the account was asked to act after `SipStack.stop`: nothing was sent."""


def delete_now(obj: Any) -> None:
    """Run the C++ destructor of `obj` (a pjsua2 proxy) now, and detach it.

    Idempotent. Call it on the loop thread while pjsua runs; SWIG releases the
    GIL for the destructor, with `obj` still whole."""
    this = vars(obj).get("this")
    if this is None:
        return
    if this.own():
        type(obj).__swig_destroy__(obj)  # SWIG's delete: disowns, then ~Class
    del vars(obj)["this"]
