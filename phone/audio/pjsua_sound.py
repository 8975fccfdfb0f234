"""The other path: pjsua owns ALSA itself, with its own echo canceller.

Where pjproject is built with ALSA (the Pi image builds it with
`libasound2-dev` and `--enable-libwebrtc-aec3`), pjsua's sound port can run
the card and cancel echo inside pjmedia (`pjsua_set_ec` ->
`pjmedia_snd_port_set_ec`), including WebRTC AEC3, which the ctypes path
cannot get from the x86 wheel. Which path a phone uses is configuration
(`audio.backend`), chosen by `bench/aec.py`'s figures on the target.

The pip wheel is built with `--disable-sound`: there `open()` raises
`AudioDeviceError` saying so, which is what the tests check on this machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from phone import pjproject
from phone.audio.alsa import AudioDeviceError
from phone.audio.echo import EchoAlgorithm, EchoConfig

log = logging.getLogger(__name__)

ALSA_DRIVER = "ALSA"
_ALGORITHM_FLAG = {
    EchoAlgorithm.WEBRTC: pj.PJMEDIA_ECHO_WEBRTC,
    EchoAlgorithm.WEBRTC_AEC3: pj.PJMEDIA_ECHO_WEBRTC_AEC3,
    EchoAlgorithm.SPEEX: pj.PJMEDIA_ECHO_SPEEX,
}


@dataclass(frozen=True)
class PjsuaSoundConfig:
    """ALSA device names as pjmedia's ALSA driver lists them, and the echo settings."""

    capture_device: str = "default"
    playback_device: str = "default"
    echo: EchoConfig = EchoConfig(EchoAlgorithm.WEBRTC_AEC3)


class PjsuaSound:
    """pjsua's own sound device; `capture_media`/`playback_media` connect calls."""

    def __init__(self, endpoint: Any, config: PjsuaSoundConfig) -> None:
        self._manager = endpoint.audDevManager()
        self.config = config
        self._muted = False

    def open(self) -> None:
        """Select the devices and the echo canceller; AudioDeviceError when absent."""
        count = self._manager.getDevCount()
        if count == 0:
            raise AudioDeviceError(
                self.config.capture_device,
                "pjsua2 has no sound devices (built with --disable-sound); use the ALSA bridge",
            )
        capture = self._lookup(self.config.capture_device)
        playback = self._lookup(self.config.playback_device)
        try:
            self._manager.setCaptureDev(capture)
            self._manager.setPlaybackDev(playback)
        except pj.Error as exc:
            raise AudioDeviceError(self.config.capture_device, exc.info()) from exc
        echo = self.config.echo
        if echo.algorithm is EchoAlgorithm.NONE:
            self._manager.setEcOptions(0, 0)
        else:
            # A tail of 0 would switch the canceller off (pjsua_set_ec); WebRTC
            # reads it as its delay hint, the others as the filter length.
            tail = max(1, echo.tail_argument())
            options = echo.flags() & ~int(pj.PJMEDIA_ECHO_ALGO_MASK)
            self._manager.setEcOptions(tail, options | _ALGORITHM_FLAG[echo.algorithm])
        pjproject.close_sound_when_idle()  # the card is opened again for a call
        log.info(
            "pjsua sound: capture %r, playback %r, echo %s",
            self.config.capture_device,
            self.config.playback_device,
            echo.algorithm.value,
        )

    def close(self) -> None:
        self._manager.setNullDev()

    @property
    def capture_media(self) -> Any:
        return self._manager.getCaptureDevMedia()

    @property
    def playback_media(self) -> Any:
        return self._manager.getPlaybackDevMedia()

    @property
    def muted(self) -> bool:
        return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        self._muted = value
        self.capture_media.adjustTxLevel(0.0 if value else 1.0)

    def _lookup(self, device: str) -> int:
        try:
            return int(self._manager.lookupDev(ALSA_DRIVER, device))
        except pj.Error as exc:
            raise AudioDeviceError(device, f"no such ALSA device in pjmedia: {exc.info()}") from exc
