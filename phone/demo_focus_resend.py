"""What the demo focus sends again over UDP, where nothing below it would
(RFC 3261 sections 13.2.2.4, 13.3.1.4 and 17; RFC 6026).

The focus is a raw UA with no transaction layer, so it keeps what a lost
datagram would make the peer ask for again:

* its final response to an INVITE goes again at T1, doubling up to T2, until
  the ACK comes: for a 2xx that is the UAS core's duty (section 13.3.1.4),
  for a non-2xx the server transaction's (Timer G, section 17.2.1). A 2xx
  still without ACK after 64*T1 is reported, so the focus ends that session
  with a BYE;
* every final response is kept for 64*T1 (Timers J and L) and sent again to a
  retransmission of its request, which is then no new transaction;
* every ACK it sends is kept as long and sent again when the final response
  it acknowledged comes again (sections 13.2.2.4 and 17.1.1.2): the peer
  repeats that response because our ACK was lost.

Everything runs on the focus's event loop: timers are `call_later` handles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from phone.sip.message import SipMessage

Address = tuple[str, int]
_Key = tuple[str, int, str]  # Call-ID, CSeq number, method


@dataclass(frozen=True)
class Timers:
    """RFC 3261's T1 (a round trip, section 17.1.1.1) and T2 (the longest
    retransmission interval, section 17.1.2.2); the tests shorten them."""

    t1: float = 0.5
    t2: float = 4.0

    @property
    def lifetime(self) -> float:
        """How long a transaction lives over UDP: 64*T1."""
        return 64 * self.t1


DEFAULT_TIMERS = Timers()  # RFC 3261 appendix A's: T1 500 ms, T2 4 s


@dataclass
class _Sent:
    data: bytes
    address: Address
    expiry: asyncio.TimerHandle | None = None
    again: asyncio.TimerHandle | None = None  # the next retransmission, until the ACK


def _key(message: SipMessage) -> _Key:
    number, method = message.cseq
    return message.call_id, number, method


class Resender:
    """The focus's final responses and ACKs, kept for 64*T1 and sent again.

    `on_no_ack(call_id)` runs when a 2xx to an INVITE got no ACK in 64*T1.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[bytes, Address], None],
        timers: Timers,
        on_no_ack: Callable[[str], None],
    ) -> None:
        self._loop = loop
        self._send = send
        self.timers = timers
        self._on_no_ack = on_no_ack
        self._responses: dict[_Key, _Sent] = {}  # by the request's Call-ID and CSeq
        self._acks: dict[_Key, _Sent] = {}  # by the acknowledged INVITE's Call-ID and CSeq

    def close(self) -> None:
        for sent in (*self._responses.values(), *self._acks.values()):
            for handle in (sent.expiry, sent.again):
                if handle is not None:
                    handle.cancel()
        self._responses.clear()
        self._acks.clear()

    # -- as the server --------------------------------------------------------
    def responded(self, request: SipMessage, status: int, data: bytes, address: Address) -> None:
        """Keep our final response `data` to `request`; to an INVITE it goes
        again until its ACK."""
        key = _key(request)
        sent = _Sent(data, address)
        self._responses[key] = sent
        dialog = key[2] == "INVITE" and status < 300  # ended if never ACKed
        sent.expiry = self._loop.call_later(self.timers.lifetime, self._expire, key, sent, dialog)
        if key[2] == "INVITE":
            self._schedule(sent, self.timers.t1)

    def repeat_response(self, request: SipMessage, address: Address) -> bool:
        """Send our response again if `request` is a retransmission of one we answered."""
        sent = self._responses.get(_key(request))
        if sent is None:
            return False
        self._send(sent.data, address)
        return True

    def acknowledged(self, ack: SipMessage) -> None:
        """An ACK: its INVITE's response (same Call-ID and CSeq number) goes no more."""
        call_id, number, _ = _key(ack)
        sent = self._responses.get((call_id, number, "INVITE"))
        if sent is not None and sent.again is not None:
            sent.again.cancel()
            sent.again = None

    def _schedule(self, sent: _Sent, interval: float) -> None:
        sent.again = self._loop.call_later(interval, self._again, sent, interval)

    def _again(self, sent: _Sent, interval: float) -> None:
        self._send(sent.data, sent.address)
        self._schedule(sent, min(2 * interval, self.timers.t2))

    def _expire(self, key: _Key, sent: _Sent, dialog: bool) -> None:
        if self._responses.get(key) is sent:
            del self._responses[key]
        unacknowledged, sent.again = sent.again, None
        if unacknowledged is not None:
            unacknowledged.cancel()
            if dialog:
                self._on_no_ack(key[0])

    # -- as the client --------------------------------------------------------
    def sent_ack(self, response: SipMessage, data: bytes, address: Address) -> None:
        """Keep the ACK `data` we sent for `response`, a final response to our INVITE."""
        key = _key(response)
        sent = _Sent(data, address)
        self._acks[key] = sent
        sent.expiry = self._loop.call_later(self.timers.lifetime, self._forget_ack, key, sent)

    def repeat_ack(self, response: SipMessage) -> None:
        """Send our ACK again if `response` is a final response we acknowledged."""
        sent = self._acks.get(_key(response)) if (response.status or 0) >= 200 else None
        if sent is not None:
            self._send(sent.data, sent.address)

    def _forget_ack(self, key: _Key, sent: _Sent) -> None:
        if self._acks.get(key) is sent:
            del self._acks[key]
