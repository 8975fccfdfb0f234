"""A contact's LED: the call layer, then urgent plugin layers, then the others;
a mark (unread) blinks what the layers below show instead of hiding it."""

from __future__ import annotations

from board.virtual import VirtualBoard
from phone.board import LED_OFF, Led, LedColor, LedPattern
from phone.buttons import CALL_LAYER, Contact, ContactButtons, LedMark

BOB = "sip:bob@example.test"
AVAILABLE = Led(LedColor.GREEN, LedPattern.STEADY)
UNREAD = Led(LedColor.AMBER, LedPattern.FAST)
RINGING = Led(LedColor.GREEN, LedPattern.FAST)
DND = Led(LedColor.RED, LedPattern.STEADY)
WINK = LedMark(Led(LedColor.AMBER, LedPattern.WINK))


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


def test_a_mark_keeps_the_presence_colour_below_it() -> None:
    board = VirtualBoard(2)
    buttons = ContactButtons(board, [Contact("Bob", BOB)])
    buttons.set_led(BOB, WINK, "chat", urgent=True)
    assert board.led("contact-1") == WINK.led  # nothing below: the mark's own colour
    buttons.set_led(BOB, AVAILABLE, "presence")
    assert board.led("contact-1") == Led(LedColor.GREEN, LedPattern.WINK)
    buttons.set_led(BOB, DND, "presence")  # presence changes under the mark
    assert board.led("contact-1") == Led(LedColor.RED, LedPattern.WINK)
    buttons.set_led(BOB, RINGING, CALL_LAYER)  # the call layer is above every mark
    assert board.led("contact-1") == RINGING
    buttons.clear_led(BOB, CALL_LAYER)
    buttons.clear_led(BOB, "chat")  # read
    assert board.led("contact-1") == DND
