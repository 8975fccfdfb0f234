"""The emulator board without a window: its settings, layout and LED blinking."""

from __future__ import annotations

import pytest

from board.emulator import (
    FUNCTION_FACES,
    EmulatorBoard,
    Layout,
    base_size,
    led_lit,
    next_blink_edge,
)
from phone.board import (
    BLINK_MS,
    FUNCTION_BUTTONS,
    Led,
    LedColor,
    LedPattern,
    contact_button,
)
from phone.board_kinds import board_class
from phone.settings import ConfigError


def test_is_an_installed_board() -> None:
    assert board_class("emulator") is EmulatorBoard


def test_settings_default_to_the_desktop_sound() -> None:
    board = EmulatorBoard(4, {})
    assert board.audio.capture_pcm == board.audio.playback_pcm == "default"
    assert board.audio.mixer is None


def test_sound_none_means_no_sound_device() -> None:
    board = EmulatorBoard(4, EmulatorBoard.validate_settings({"sound": "none"}))
    assert board.audio.capture_pcm is None and board.audio.playback_pcm is None


def test_unknown_setting_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"board\.emulator\.sund"):
        EmulatorBoard.validate_settings({"sund": "none"})


def test_labels_and_leds_reach_the_board() -> None:
    board = EmulatorBoard(2, {})
    board.set_label("contact-1", "Bob")
    board.set_led("contact-1", Led(LedColor.RED, LedPattern.STEADY))
    assert board.label("contact-1") == "Bob"
    assert board.led("contact-1") == Led(LedColor.RED, LedPattern.STEADY)
    assert "conference" in board.button_names


@pytest.mark.parametrize("buttons", [1, 4, 8, 12])
@pytest.mark.parametrize("zoom", [0.5, 1.0, 1.5, 2.0])
def test_every_button_is_found_where_it_is_drawn(buttons: int, zoom: float) -> None:
    width, height = base_size(buttons)
    layout = Layout.fit((int(width * zoom), int(height * zoom)), buttons)
    assert layout.scale == pytest.approx(zoom, rel=0.01)
    for index, box in enumerate(layout.contacts):
        assert layout.button_at(box.center) == contact_button(index)
        assert layout.button_at(layout.leds[index]) == contact_button(index)
    for name in FUNCTION_BUTTONS:
        assert layout.button_at(layout.functions[name].center) == name
    assert layout.button_at(layout.screen.center) is None
    assert set(FUNCTION_FACES) == set(layout.functions) == set(FUNCTION_BUTTONS)


def test_a_wider_window_centres_the_front() -> None:
    width, height = base_size(4)
    layout = Layout.fit((width * 3, height), 4)
    assert layout.scale == 1.0
    assert layout.screen.x > width


@pytest.mark.parametrize("pattern", [LedPattern.SLOW, LedPattern.FAST])
def test_blinking_follows_blink_ms(pattern: LedPattern) -> None:
    led = Led(LedColor.GREEN, pattern)
    on_ms, off_ms = BLINK_MS[pattern]
    since = 100.0
    assert led_lit(led, since, since)  # starts lit, like the kernel's timer trigger
    assert led_lit(led, since, since + (on_ms - 1) / 1000)
    assert not led_lit(led, since, since + (on_ms + 1) / 1000)
    assert led_lit(led, since, since + (on_ms + off_ms + 1) / 1000)
    assert next_blink_edge(led, since, since) == pytest.approx(since + on_ms / 1000)
    after_off = since + (on_ms + 1) / 1000
    assert next_blink_edge(led, since, after_off) == pytest.approx(since + (on_ms + off_ms) / 1000)


def test_steady_and_dark_leds_never_need_a_redraw() -> None:
    assert next_blink_edge(Led(LedColor.RED, LedPattern.STEADY), 0.0, 5.0) is None
    assert next_blink_edge(Led(), 0.0, 5.0) is None
    assert led_lit(Led(LedColor.AMBER, LedPattern.STEADY), 0.0, 5.0)
    assert not led_lit(Led(), 0.0, 5.0)


def test_a_headset_can_have_its_own_microphone_and_speaker() -> None:
    settings = {"capture_pcm": "headset_mic", "playback_pcm": "headset", "mixer": "PCM"}
    board = EmulatorBoard(4, EmulatorBoard.validate_settings(settings))
    assert (board.audio.capture_pcm, board.audio.playback_pcm) == ("headset_mic", "headset")
    assert board.audio.mixer == "PCM"
    quiet = EmulatorBoard(4, EmulatorBoard.validate_settings({**settings, "sound": "none"}))
    assert quiet.audio.capture_pcm is None and quiet.audio.playback_pcm is None
