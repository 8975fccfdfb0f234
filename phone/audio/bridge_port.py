"""A Python port in pjsua's conference bridge, and the one safe way it ends.

pjsua2's `AudioMediaPort` is a SWIG director: pjmedia's clock thread calls
`onFrameRequested`/`onFrameReceived` on the Python object every 20 ms while
the port is in the bridge (`onFrameReceived` even when nothing is connected:
the bridge sends idle ports empty heartbeat frames). Left to Python, the port
ends badly: when the last reference goes, CPython first tears the object down
(clears its `__dict__`, which holds SWIG's `this`), and only then SWIG deletes
the C++ port, with the GIL released (the wheel's bindings are built with
threads). Until `~AudioMediaPort` has unhooked itself under the port's lock,
the clock thread still calls the director, which takes the GIL and calls
Python on the half-destroyed object: it raises AttributeError, and the
reference it takes and drops frees the object a second time. The heap is then
corrupt, and the process dies later, typically in the garbage collector on
the main thread (issue 14's segfault).

So a `BridgePort` is ended explicitly by its owner, with `destroy()`, while
the Python object is whole. `destroy()` deletes the C++ port (SWIG releases
the GIL for it): a callback already under way finishes on an intact object,
the port leaves the bridge, and pjmedia never calls it again. The Python
object stays, inert, until its owner drops it. A port dropped without
`destroy()` is ended the same way by `__del__` (CPython runs it before the
teardown, with the object whole), so forgetting is not a crash either.

Ports must end before `Endpoint.libDestroy()`: after it the bridge is gone
and `~AudioMediaPort` asserts in `pjmedia_conf_remove_port` (SIGABRT). A port
still alive then is leaked, with an error logged, rather than deleted.
"""

from __future__ import annotations

import logging

import pjsua2 as pj

from phone import pjproject

log = logging.getLogger(__name__)

RATE = 16000


def _bridge_exists() -> bool:
    """True while pjsua (and so its conference bridge) is created and not destroyed.

    pjsua_get_state() only reads a variable: safe even after pjlib has shut
    down, when any pjsua2 call (Endpoint.instance() included) would abort."""
    return int(pjproject.library().pjsua_get_state()) != int(pj.PJSUA_STATE_NULL)


class BridgePort(pj.AudioMediaPort):
    """An S16 mono port in the bridge, called on pjmedia's clock thread.

    Subclasses override `onFrameRequested`/`onFrameReceived`, guarded with
    `@pjsua_callback(log_repeats=False)` (`phone.pjsua_callback`), and set
    whatever those use *before* calling `super().__init__`: the clock may call
    them as soon as the port is created. The owner calls `destroy()` before
    `libDestroy`, then drops the object.
    """

    _ended = True  # until the C++ port exists there is nothing to end

    def __init__(self, name: str, frame_ms: int = 20, clock_rate: int = RATE) -> None:
        super().__init__()
        self._ended = False
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, clock_rate, 1, frame_ms * 1000, 16)
        self.createPort(name, fmt)

    @property
    def ended(self) -> bool:
        return self._ended

    def destroy(self) -> None:
        """Leave the bridge and free the C++ port; no callback runs after this returns.

        Idempotent. Everything else about the object (its Python attributes)
        stays readable; its pjsua2 methods must not be called any more.
        """
        if self._ended:
            return
        self._ended = True
        if not _bridge_exists():
            # Deleting it now would abort in pjmedia: leak it instead.
            self.this.disown()
            log.error("audio port %s outlived the SIP stack; leaked", type(self).__name__)
            return
        # SWIG's delete: ~AudioMediaPort with the GIL released, this object whole.
        pj.AudioMediaPort.__swig_destroy__(self)

    def __del__(self) -> None:
        self.destroy()
