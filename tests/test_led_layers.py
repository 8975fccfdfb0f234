"""A contact's LED: the call layer, then urgent plugin layers, then the others."""

from __future__ import annotations

from board.virtual import VirtualBoard
from phone.board import LED_OFF, Led, LedColor, LedPattern
from phone.buttons import CALL_LAYER, Contact, ContactButtons

BOB = "sip:bob@example.test"
AVAILABLE = Led(LedColor.GREEN, LedPattern.STEADY)
UNREAD = Led(LedColor.AMBER, LedPattern.FAST)
RINGING = Led(LedColor.GREEN, LedPattern.FAST)


def test_an_urgent_layer_shows_above_presence_and_under_a_call() -> None:
    board = VirtualBoard(2)
    buttons = ContactButtons(board, [Contact("Bob", BOB)])
    buttons.set_led(BOB, AVAILABLE, "presence")  # used first
    buttons.set_led(BOB, UNREAD, "chat", urgent=True)
    assert board.led("contact-1") == UNREAD
    buttons.set_led(BOB, RINGING, CALL_LAYER)
    assert board.led("contact-1") == RINGING
    buttons.clear_led(BOB, CALL_LAYER)
    buttons.set_led(BOB, LED_OFF, "chat")  # read: presence shows again
    assert board.led("contact-1") == AVAILABLE
    buttons.set_led(BOB, Led(LedColor.RED, LedPattern.SLOW), "missed", urgent=True)
    buttons.set_led(BOB, UNREAD, "chat")
    assert board.led("contact-1") == UNREAD  # urgent layers keep their first-use order
