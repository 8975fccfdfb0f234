"""PjsuaSound: pjsua owning ALSA. The pip wheel has no sound devices, so here it must
refuse clearly; on a build with ALSA (the Pi image) it must select the device."""

from __future__ import annotations

from typing import Any

import pytest

from phone.audio.alsa import AudioDeviceError
from phone.audio.echo import EchoAlgorithm, EchoConfig
from phone.audio.pjsua_sound import PjsuaSound, PjsuaSoundConfig


def test_a_build_without_sound_is_refused_clearly(pj_endpoint: Any) -> None:
    if pj_endpoint.audDevManager().getDevCount() != 0:
        pytest.skip("this pjsua2 has sound devices")
    sound = PjsuaSound(pj_endpoint, PjsuaSoundConfig())
    with pytest.raises(AudioDeviceError, match="--disable-sound"):
        sound.open()


def test_an_alsa_build_selects_the_device_and_its_echo_canceller(pj_endpoint: Any) -> None:
    manager = pj_endpoint.audDevManager()
    if manager.getDevCount() == 0:
        pytest.skip("this pjsua2 was built without sound (the pip wheel)")
    sound = PjsuaSound(
        pj_endpoint, PjsuaSoundConfig(echo=EchoConfig(EchoAlgorithm.WEBRTC_AEC3, tail_ms=100))
    )
    try:
        sound.open()
        assert manager.getEcTail() == 100
        sound.muted = True
        assert sound.muted
    finally:
        sound.close()


def test_an_unknown_device_is_named(pj_endpoint: Any) -> None:
    if pj_endpoint.audDevManager().getDevCount() == 0:
        pytest.skip("this pjsua2 was built without sound (the pip wheel)")
    sound = PjsuaSound(pj_endpoint, PjsuaSoundConfig(capture_device="nosuch"))
    with pytest.raises(AudioDeviceError, match="nosuch"):
        sound.open()
