"""What the demo focus sends again over UDP, where nothing below it would
(RFC 3261 sections 13.2.2.4, 13.3.1.4 and 17; RFC 6026).

The focus is a raw UA with no transaction layer, so it sends again what a
lost datagram would leave unanswered, and keeps what the peer would ask for
again:

* its own requests go again until a response comes (section 17.1): an INVITE
  at T1, doubling, until a provisional or final response (Timer A), a
  non-INVITE at T1, doubling up to T2, and at T2 once a provisional came
  (Timer E), until a final one. An INVITE with no response, or a non-INVITE
  with no final response, in 64*T1 has timed out (Timers B and F);
* its final response to an INVITE goes again at T1, doubling up to T2, until
  the ACK comes: for a 2xx that is the UAS core's duty (section 13.3.1.4),
  for a non-2xx the server transaction's (Timer G, section 17.2.1). A 2xx
  still without ACK after 64*T1 is reported, so the focus ends that session
  with a BYE;
* every final response is kept for 64*T1 (Timers J and L) and sent again to a
  retransmission of its request (the same top Via branch and sent-by, and
  method: section 17.2.3), which is then no new transaction;
* every ACK it sends is kept as long and sent again when the final response
  it acknowledged comes again (sections 13.2.2.4 and 17.1.1.2): the peer
  repeats that response because our ACK was lost.

Everything runs on the focus's event loop: timers are `call_later` handles.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

from phone.sip.message import SipMessage, header_params

Address = tuple[str, int]
_Key = tuple[str, int, str]  # Call-ID, CSeq number, method
_Transaction = tuple[str, str, str]  # top Via branch and sent-by, CSeq method (section 17.2.3)
_Ours = tuple[str, str]  # our request's top Via branch and method (a CANCEL shares the branch)


@dataclass(frozen=True)
class Timers:
    """RFC 3261's T1 (a round trip, section 17.1.1.1) and T2 (the longest
    retransmission interval, section 17.1.2.2), and how long a dial-out may
    ring before the focus CANCELs it (`phone/demo_focus_ring.py`: 30 s, a desk
    phone's no-answer time); the tests shorten them."""

    t1: float = 0.5
    t2: float = 4.0
    ring: float = 30.0

    @property
    def lifetime(self) -> float:
        """How long a transaction lives over UDP: 64*T1."""
        return 64 * self.t1


DEFAULT_TIMERS = Timers()  # RFC 3261 appendix A's: T1 500 ms, T2 4 s


@dataclass
class _Sent:
    data: bytes
    address: Address
    call: tuple[str, int] = ("", 0)  # a response's: its request's Call-ID and CSeq number
    ceiling: float = math.inf  # the longest wait between two sendings
    interval: float = 0.0  # the last wait between two sendings
    expiry: asyncio.TimerHandle | None = None
    again: asyncio.TimerHandle | None = None  # the next sending, until an answer

    def stop(self) -> None:
        """No more sending, no expiry."""
        for handle in (self.expiry, self.again):
            if handle is not None:
                handle.cancel()


def _key(message: SipMessage) -> _Key:
    number, method = message.cseq
    return message.call_id, number, method


def _transaction(message: SipMessage) -> _Transaction:
    """The transaction of a request or response (RFC 3261 sections 17.1.3 and
    17.2.3): its top Via's branch and sent-by, and its CSeq method."""
    via, params = header_params(message.require("via"))
    return params.get("branch", ""), via.split()[-1], message.cseq[1]


class Resender:
    """The focus's requests, sent again until answered, and its final responses
    and ACKs, kept for 64*T1 and sent again.

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
        self._responses: dict[_Transaction, _Sent] = {}  # by the request's transaction
        self._acks: dict[_Key, _Sent] = {}  # by the acknowledged INVITE's Call-ID and CSeq
        self._requests: dict[_Ours, _Sent] = {}  # ours, unanswered

    def close(self) -> None:
        kept = (*self._responses.values(), *self._acks.values(), *self._requests.values())
        for sent in kept:
            sent.stop()
        self._responses.clear()
        self._acks.clear()
        self._requests.clear()

    # -- as the server --------------------------------------------------------
    def responded(self, request: SipMessage, status: int, data: bytes, address: Address) -> None:
        """Keep our final response `data` to `request`; to an INVITE it goes
        again until its ACK."""
        key = _transaction(request)
        call = (request.call_id, request.cseq[0])
        sent = _Sent(data, address, call, ceiling=self.timers.t2)
        self._responses[key] = sent
        dialog = key[2] == "INVITE" and status < 300  # ended if never ACKed
        sent.expiry = self._loop.call_later(self.timers.lifetime, self._expire, key, sent, dialog)
        if key[2] == "INVITE":
            self._schedule(sent, self.timers.t1)

    def repeat_response(self, request: SipMessage, address: Address) -> bool:
        """Send our response again if `request` is a retransmission of one we answered."""
        sent = self._responses.get(_transaction(request))
        if sent is None:
            return False
        self._send(sent.data, address)
        return True

    def answered_request(self, cancel: SipMessage) -> bool:
        """Whether the request `cancel` cancels, the one of its transaction with
        another method (RFC 3261 section 9.2), is one we answered and keep."""
        branch, sent_by, _ = _transaction(cancel)
        return any(key[:2] == (branch, sent_by) and key[2] != "CANCEL" for key in self._responses)

    def acknowledged(self, ack: SipMessage) -> None:
        """An ACK: its INVITE's response (same Call-ID and CSeq number; a 2xx's ACK
        is a transaction of its own) goes no more."""
        call = (ack.call_id, ack.cseq[0])
        for key, sent in self._responses.items():
            if key[2] == "INVITE" and sent.call == call and sent.again is not None:
                sent.again.cancel()
                sent.again = None

    def _schedule(self, sent: _Sent, interval: float) -> None:
        sent.interval = interval
        sent.again = self._loop.call_later(interval, self._again, sent)

    def _again(self, sent: _Sent) -> None:
        self._send(sent.data, sent.address)
        self._schedule(sent, min(2 * sent.interval, sent.ceiling))

    def _expire(self, key: _Transaction, sent: _Sent, dialog: bool) -> None:
        if self._responses.get(key) is sent:
            del self._responses[key]
        unacknowledged, sent.again = sent.again, None
        if unacknowledged is not None:
            unacknowledged.cancel()
            if dialog:
                self._on_no_ack(sent.call[0])

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

    # -- our requests (client transactions, section 17.1) ---------------------
    def sent_request(
        self,
        method: str,
        branch: str,
        data: bytes,
        address: Address,
        on_timeout: Callable[[], None],
    ) -> None:
        """Our request `data` (`method`, its Via `branch`) went to `address`: it
        goes again until `answered`, and `on_timeout` runs when 64*T1 pass first."""
        sent = _Sent(data, address, ceiling=math.inf if method == "INVITE" else self.timers.t2)
        key = (branch, method)
        self._requests[key] = sent
        sent.expiry = self._loop.call_later(
            self.timers.lifetime, self._timed_out, key, sent, on_timeout
        )  # Timers B and F
        self._schedule(sent, self.timers.t1)

    def answered(self, response: SipMessage) -> None:
        """A response to one of our requests: a final one, or a provisional one to
        an INVITE, ends its sending and its timeout; a provisional one to a
        non-INVITE makes the next waits T2."""
        branch, _, method = _transaction(response)
        sent = self._requests.get((branch, method))
        if sent is None:
            return
        if (response.status or 0) < 200 and method != "INVITE":
            sent.interval = sent.ceiling
            return
        del self._requests[branch, method]
        sent.stop()

    def _timed_out(self, key: _Ours, sent: _Sent, on_timeout: Callable[[], None]) -> None:
        del self._requests[key]
        sent.stop()
        on_timeout()
