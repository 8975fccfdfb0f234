"""The far end of a call, inside pjsua's conference bridge, for audio tests.

`FarTalker` is a port that plays PCM into whatever it transmits to (as the
remote party's voice arriving over RTP would); `FarListener` records what it
receives (what the remote party would hear). Their callbacks run on pjmedia's
clock thread and only touch their own buffers. Both are `BridgePort`s: the
test that makes one ends it with `destroy()` (the `far_end` fixture does).
"""

from __future__ import annotations

import threading
from typing import Any

import pjsua2 as pj

from phone.audio.bridge_port import BridgePort

RATE = 16000


class FarTalker(BridgePort):
    """Plays `pcm` (S16 mono) once, then silence."""

    def __init__(self, pcm: bytes, frame_ms: int = 20) -> None:
        self._pcm = pcm
        self._pos = 0
        self._frame_bytes = RATE * frame_ms // 1000 * 2
        super().__init__("far-talker", frame_ms, RATE)

    def onFrameRequested(self, frame: Any) -> None:
        chunk = self._pcm[self._pos : self._pos + self._frame_bytes]
        self._pos += self._frame_bytes
        chunk = chunk + bytes(self._frame_bytes - len(chunk))
        frame.buf = pj.ByteVector(chunk)
        frame.size = len(chunk)
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO


class FarListener(BridgePort):
    """Records every frame it receives (silence for frames without audio)."""

    def __init__(self, frame_ms: int = 20) -> None:
        self._frame_bytes = RATE * frame_ms // 1000 * 2
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        super().__init__("far-listener", frame_ms, RATE)

    def onFrameReceived(self, frame: Any) -> None:
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
            data = bytes(frame.buf)
        else:
            data = bytes(self._frame_bytes)
        with self._lock:
            self._chunks.append(data)

    def take(self) -> bytes:
        with self._lock:
            data = b"".join(self._chunks)
            self._chunks.clear()
        return data


class FarEnd:
    """The far-end ports one test or rig run makes, all ended by `destroy()`."""

    def __init__(self) -> None:
        self._ports: list[BridgePort] = []

    def talker(self, pcm: bytes) -> FarTalker:
        port = FarTalker(pcm)
        self._ports.append(port)
        return port

    def listener(self) -> FarListener:
        port = FarListener()
        self._ports.append(port)
        return port

    def destroy(self) -> None:
        for port in self._ports:
            port.destroy()
        self._ports.clear()
