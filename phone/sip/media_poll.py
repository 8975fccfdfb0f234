"""The thread that receives RTP, running only while a call exists.

pjmedia receives RTP and RTCP on its own ioqueue (`MediaConfig.hasIoqueue`),
apart from pjsip's. pjmedia's worker thread polls it every 10 ms for the life
of the process: 100 wake-ups a second on an idle phone, about a third of its
idle CPU. pjsua insists on that thread whenever media has its own ioqueue
(`threadCnt` 0 becomes 1), and sharing pjsip's ioqueue instead would receive
RTP on the event loop, where every packet would wait for whatever the loop
is doing. So the phone stops pjmedia's worker at start
(`pjmedia_endpt_stop_threads`, before any call has a socket) and polls that
ioqueue here the same way (with a timeout, which picks up a socket added
meanwhile), but only while pjsua has a call; between calls the thread sleeps
on an event and costs nothing.

RTP stays off the event loop: a packet is read and put into the call's jitter
buffer on this thread, never waiting for the loop. What pjsua2 raises here
(DTMF, media events) it queues for the loop's next poll (`mainThreadOnly`).
`SipWakeups` reports whether a call exists after each poll and send
(`serve`); pjsua creates a call's media inside one of those, so the thread
runs before its first packet can arrive.
"""

from __future__ import annotations

import ctypes
import logging
import threading

from phone import pjproject
from phone.pjproject import PjTimeVal

log = logging.getLogger(__name__)

# Longer than two 20 ms packets, so in a call each poll ends on a packet (a
# Python thread's wake-up costs about 100 us here; pjmedia's 10 ms timeouts
# doubled them); a socket added meanwhile (a second call) waits at most this.
POLL_MS = 40
STOP_TIMEOUT_S = 2.0


class MediaPoller:
    """Polls pjmedia's ioqueue on a thread of its own while `serve(True)`."""

    def __init__(self) -> None:
        lib = pjproject.library()
        endpt = lib.pjsua_get_pjmedia_endpt()
        lib.pjmedia_endpt_stop_threads(endpt)  # joins them; libDestroy's second stop finds none
        self._lib = lib
        self._ioqueue: int = lib.pjmedia_endpt_get_ioqueue(endpt)
        self._serving = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="rtp", daemon=True)
        self._thread.start()

    def serve(self, calls: bool) -> None:
        """Poll while `calls` (pjsua has a call); sleep once it has none."""
        if calls:
            self._serving.set()
        else:
            self._serving.clear()

    def _run(self) -> None:
        pjproject.name_thread("rtp")
        pjproject.register_thread("rtp")
        timeout = PjTimeVal(0, POLL_MS)
        poll = self._lib.pj_ioqueue_poll
        while not self._closed:
            if self._serving.is_set():
                poll(self._ioqueue, ctypes.byref(timeout))  # ctypes releases the GIL meanwhile
            else:
                self._serving.wait()

    def close(self) -> None:
        """Stop the thread (before `libDestroy`: the ioqueue dies with pjmedia)."""
        self._closed = True
        self._serving.set()
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            log.error("the RTP thread did not stop within %.0f s", STOP_TIMEOUT_S)
