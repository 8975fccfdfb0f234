"""`PressTracker.down_at`: what `PhoneApi.pressed_at` reads, so a plugin can
tell that the same press is still held (the conference plugin's removal hold)."""

from __future__ import annotations

import asyncio

from phone.board import ButtonEvent
from phone.buttons import PressTracker


def test_down_at_names_the_press_still_held_and_forgets_it_on_release() -> None:
    async def run() -> None:
        presses: list[tuple[str, bool]] = []
        tracker = PressTracker(60_000, lambda button, long: presses.append((button, long)))
        assert tracker.down_at("contact-1") is None
        tracker.edge(ButtonEvent("contact-1", True))
        first = tracker.down_at("contact-1")
        assert first is not None and first <= asyncio.get_running_loop().time()
        tracker.edge(ButtonEvent("contact-1", True))  # a second "down": the same press
        assert tracker.down_at("contact-1") == first
        assert tracker.down_at("contact-2") is None
        tracker.edge(ButtonEvent("contact-1", False))
        assert tracker.down_at("contact-1") is None
        assert presses == [("contact-1", False)]
        tracker.edge(ButtonEvent("contact-1", True))  # a new press is another one
        second = tracker.down_at("contact-1")
        assert second is not None and second >= first
        tracker.edge(ButtonEvent("contact-1", False))

    asyncio.run(run())
