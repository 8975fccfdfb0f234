"""Incoming pager-mode MESSAGE requests (RFC 3428), handed to one receiver.

Without a receiver pjsua answers an out-of-dialog MESSAGE itself (200) and
keeps the text to callbacks the phone does not use. Once a plugin sets one
(`PhoneApi.receive_messages`, the chat plugin), the request hook takes every
MESSAGE outside a dialog first: the receiver gets it parsed and says which
final status to answer (RFC 3428 section 7: 200 when taken, 415 for a body
type it does not read, ...). The answer is stateless, so a retransmission
(the same From tag, Call-ID and CSeq; RFC 3261 section 17.2.3) is answered
the same again without reaching the receiver twice. A MESSAGE inside a
dialog (a call's) stays pjsua's.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from phone.sip.message import MessageError, SipMessage
from phone.sip.rawsip import RawSip, Responder

log = logging.getLogger(__name__)

REMEMBERED = 64  # answers kept for retransmissions; UDP retransmits for 32 s at most

MessageReceiver = Callable[[SipMessage], int]
"""Gets an incoming MESSAGE; returns the final status to answer it with (200 to 699)."""


class PagerInbox:
    """Takes out-of-dialog MESSAGEs off the request hook for one receiver."""

    def __init__(self, raw: RawSip, receiver: MessageReceiver) -> None:
        self._receiver = receiver
        self._answered: OrderedDict[tuple[str, str, int], int] = OrderedDict()
        raw.on_request("MESSAGE", self._on_message)

    def _on_message(self, message: SipMessage, respond: Responder) -> bool:
        try:
            if message.to.tag:
                return False
            key = (message.from_.tag or "", message.call_id, message.cseq[0])
        except MessageError as exc:
            log.warning("bad MESSAGE: %s", exc)
            respond(400)
            return True
        code = self._answered.get(key)
        if code is None:
            code = self._receive(message)
            self._answered[key] = code
            if len(self._answered) > REMEMBERED:
                self._answered.popitem(last=False)
        respond(code)
        return True

    def _receive(self, message: SipMessage) -> int:
        try:
            code = self._receiver(message)
        except Exception:
            log.exception("MESSAGE from %s: the receiver failed, answering 500", message.from_.uri)
            return 500
        if type(code) is not int or not 200 <= code <= 699:
            log.error("MESSAGE receiver answered %r, not a status from 200 to 699: 500", code)
            return 500
        return code
