"""A caller that floods a phone with calls over UDP: INVITE (and CANCEL) rounds.

Used by the burst tests and `bench/burst.py`. Each round is a new call: an
INVITE with an SDP offer of `audio_lines` audio lines, then, unless told not
to, a CANCEL right behind it (a missed call). Final responses to the INVITEs
are ACKed (RFC 3261 section 17.1.1.3) and recorded with their Retry-After.
Everything runs on the caller's thread with a non-blocking socket.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

from phone.sip.message import MessageError, SipMessage
from tests.sip.udp_peer import UdpSipPeer


def sdp_offer(port: int, audio_lines: int) -> bytes:
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
    for index in range(audio_lines):
        lines += [f"m=audio {port + 2 * index} RTP/AVP 0", "a=rtpmap:0 PCMU/8000"]
    return ("\r\n".join(lines) + "\r\n").encode()


RETRANSMIT_S = 0.5  # T1: a caller resends an unanswered INVITE (section 17.1.1.2)


@dataclass
class _Call:
    branch: str
    tag: str
    sent: list[bytes] = field(default_factory=list)  # the INVITE, and its CANCEL
    final: int | None = None


@dataclass
class FloodResult:
    sent: int = 0
    finals: Counter[int] = field(default_factory=Counter)  # final code of each INVITE
    retry_after: list[int | None] = field(default_factory=list)  # of each 486/503, in order
    seconds: float = 0.0

    @property
    def answered(self) -> int:
        return sum(self.finals.values())

    @property
    def told_when(self) -> list[int]:
        """The Retry-After of the refusals that had one, in seconds."""
        return [seconds for seconds in self.retry_after if seconds is not None]


class CallFlood:
    def __init__(self, target: str, audio_lines: int = 1) -> None:
        self.peer = UdpSipPeer("mallory")
        self.peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.target_uri = target
        host_port = target.split("@", 1)[1].split(";", 1)[0]
        host, _, port = host_port.rpartition(":")
        self.address = (host, int(port))
        self.sdp = sdp_offer(40000, audio_lines)
        self.calls: dict[str, _Call] = {}
        self.result = FloodResult()

    def close(self) -> None:
        self.peer.close()

    def call(self, cancel: bool = True) -> None:
        """One round: a new INVITE, and its CANCEL right behind it."""
        call_id = secrets.token_hex(8)
        call = _Call("z9hG4bK" + secrets.token_hex(8), secrets.token_hex(4))
        self.calls[call_id] = call
        call.sent.append(self._request("INVITE", call_id, call, body=self.sdp))
        if cancel:
            call.sent.append(self._request("CANCEL", call_id, call))
        for message in call.sent:
            self.peer.send(message, self.address)
        self.result.sent += 1

    def run(self, rounds: int, interval: float = 0.0, cancel: bool = True) -> FloodResult:
        """`rounds` calls, one every `interval` seconds (0: as fast as the socket takes
        them), reading and ACKing responses in between."""
        start = time.monotonic()
        for index in range(rounds):
            self.call(cancel)
            self.receive(until=start + (index + 1) * interval)
        self.result.seconds = time.monotonic() - start
        return self.result

    def receive(self, until: float) -> None:
        """Read responses until `until` (monotonic), at least what is queued now."""
        while True:
            try:
                data = self.peer.sock.recv(65535)
            except BlockingIOError:
                if time.monotonic() >= until:
                    return
                time.sleep(0.0005)
                continue
            self._on_response(data)

    def finish(self, timeout: float = 10.0) -> FloodResult:
        """Wait until every INVITE has its final response (or `timeout`), sending
        again what is unanswered every T1, as a caller does when UDP drops it."""
        deadline = time.monotonic() + timeout
        while self.result.answered < self.result.sent and time.monotonic() < deadline:
            self.receive(until=time.monotonic() + RETRANSMIT_S)
            for call in self.calls.values():
                if call.final is None:
                    for message in call.sent:
                        self.peer.send(message, self.address)
        return self.result

    def _on_response(self, data: bytes) -> None:
        try:
            response = SipMessage.parse(data)
            number, method = response.cseq
            call = self.calls.get(response.call_id)
        except MessageError:
            return
        code = response.status
        if call is None or method != "INVITE" or code is None or code < 200:
            return
        if call.final is None:
            call.final = code
            self.result.finals[code] += 1
            if code in (486, 503):
                retry = response.header("retry-after")  # delta-seconds [comment] *(;param)
                seconds = None if retry is None else int(retry.split(";")[0].split("(")[0])
                self.result.retry_after.append(seconds)
        if code >= 300:  # the ACK of a non-2xx final response (section 17.1.1.3)
            ack = self._request("ACK", response.call_id, call, to=response.require("to"))
            self.peer.send(ack, self.address)

    def _request(
        self, method: str, call_id: str, call: _Call, to: str | None = None, body: bytes = b""
    ) -> bytes:
        return self.peer.request(
            method,
            self.target_uri,
            call_id=call_id,
            from_tag=call.tag,
            to=to or f"<{self.target_uri}>",
            cseq=1,
            branch=call.branch,
            body=body,
            content_type="application/sdp" if body else None,
        )
