"""VirtualBoard: LEDs, injected buttons, the screen and its screenshots, and its settings."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import pytest
from luma.core.render import canvas

from board.virtual import VirtualBoard
from phone.board import (
    FUNCTION_BUTTONS,
    LED_OFF,
    AudioEndpoints,
    ButtonEvent,
    Led,
    LedColor,
    LedPattern,
)
from phone.config import ConfigError


def write_wav(path: Path, channels: int = 1, width: int = 2, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(bytes(channels * width * rate // 10))
    return path


def test_leds_are_kept_and_unknown_ones_refused() -> None:
    board = VirtualBoard(3)
    assert board.led("contact-3") == LED_OFF
    board.set_led("contact-2", Led(LedColor.AMBER, LedPattern.FAST))
    assert board.led("contact-2").as_dict() == {"color": "amber", "pattern": "fast"}
    with pytest.raises(ValueError, match="no LED on button 'contact-4'"):
        board.set_led("contact-4", Led(LedColor.GREEN, LedPattern.STEADY))
    with pytest.raises(ValueError, match="no LED on button 'answer'"):
        board.set_led("answer", Led(LedColor.GREEN, LedPattern.STEADY))


def test_injected_edges_reach_the_handler_and_close_darkens() -> None:
    board = VirtualBoard(2)
    events: list[ButtonEvent] = []
    board.inject(ButtonEvent("answer", down=True))  # before start: nobody listens
    board.set_led("contact-1", Led(LedColor.GREEN, LedPattern.STEADY))

    async def lifecycle() -> None:
        await board.start(events.append)
        board.inject(ButtonEvent("contact-2", down=True))
        board.inject(ButtonEvent("contact-2", down=False))
        for name in FUNCTION_BUTTONS:
            board.inject(ButtonEvent(name, down=True))
        await board.close()
        board.inject(ButtonEvent("end", down=True))  # after close: nobody listens

    asyncio.run(lifecycle())
    assert [(e.button, e.down) for e in events[:2]] == [("contact-2", True), ("contact-2", False)]
    assert [e.button for e in events[2:]] == list(FUNCTION_BUTTONS)
    assert board.led("contact-1") == LED_OFF


@pytest.mark.parametrize("button", ["contact-3", "contact-0", "hangup", ""])
def test_unknown_button_is_refused(button: str) -> None:
    board = VirtualBoard(2)
    with pytest.raises(ValueError, match="unknown button"):
        board.inject(ButtonEvent(button, down=True))


def test_display_keeps_what_was_drawn() -> None:
    board = VirtualBoard(1)
    assert (board.display.width, board.display.height, board.display.mode) == (128, 64, "1")
    with canvas(board.display) as draw:
        draw.rectangle((10, 20, 11, 21), fill="white")
    image = board.display.image
    assert image.getpixel((10, 20)) == 255
    assert image.getpixel((12, 20)) == 0


def test_audio_endpoints_come_from_settings(tmp_path: Path) -> None:
    mic = write_wav(tmp_path / "mic.wav", rate=16000)
    board = VirtualBoard(
        1, {"mic": str(mic), "speaker": str(tmp_path / "out.wav"), "mixer": "Master"}
    )
    assert board.audio == AudioEndpoints(
        mic_wav=str(mic), speaker_wav=str(tmp_path / "out.wav"), mixer="Master"
    )
    assert VirtualBoard(1).audio == AudioEndpoints()


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_wav(tmp_path / "mic.wav")
    settings = VirtualBoard.validate_settings({"mic": "~/mic.wav", "speaker": "~/out.wav"})
    assert settings == {"mic": str(tmp_path / "mic.wav"), "speaker": str(tmp_path / "out.wav")}
    assert VirtualBoard.validate_settings(settings) == settings  # as phone.cli validates first


def bad_settings(tmp: Path) -> list[tuple[dict[str, Any], str, str]]:
    (tmp / "notes.txt").write_text("not a wav")
    (tmp / "cut.wav").write_bytes(write_wav(tmp / "whole.wav").read_bytes()[:30])
    return [
        ({"mic": str(tmp / "none.wav")}, "board.virtual.mic", "no such file"),
        ({"mic": str(write_wav(tmp / "st.wav", channels=2))}, "board.virtual.mic", "must be mono"),
        ({"mic": str(write_wav(tmp / "8.wav", width=1))}, "board.virtual.mic", "is 8-bit"),
        ({"mic": str(tmp / "notes.txt")}, "board.virtual.mic", "not a PCM WAV file"),
        ({"mic": str(tmp / "cut.wav")}, "board.virtual.mic", "not a PCM WAV file"),
        ({"mic": str(tmp)}, "board.virtual.mic", "cannot read"),
        ({"mic": 5}, "board.virtual.mic", "must be a string, got 5"),
        ({"speaker": str(tmp / "gone" / "out.wav")}, "board.virtual.speaker", "does not exist"),
        ({"speaker": str(tmp)}, "board.virtual.speaker", "is a directory"),
        ({"capture_pcm": ""}, "board.virtual.capture_pcm", "must not be empty"),
        ({"speakers": "x.wav"}, "board.virtual.speakers", "did you mean 'speaker'?"),
    ]


def test_bad_settings_name_the_key_and_the_problem(tmp_path: Path) -> None:
    for section, key, message in bad_settings(tmp_path):
        with pytest.raises(ConfigError) as caught:
            VirtualBoard.validate_settings(section)
        assert caught.value.key == key, section
        assert message in str(caught.value), (section, str(caught.value))
        with pytest.raises(ConfigError):
            VirtualBoard(1, section)
