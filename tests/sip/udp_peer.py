"""A raw SIP peer over UDP on loopback, for tests that need to put exact bytes on the wire.

It plays a notifier (answers SUBSCRIBE, sends NOTIFY) or any other UAS/UAC role
one message at a time; the test pumps pjsua between its steps.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable

from phone.sip.message import SipMessage


class UdpSipPeer:
    def __init__(self, user: str = "peer") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.user = user
        self.uri = f"sip:{user}@127.0.0.1:{self.port}"
        self.last_from: tuple[str, int] | None = None

    def close(self) -> None:
        self.sock.close()

    def send(self, text: str | bytes, to: tuple[str, int]) -> None:
        self.sock.sendto(text.encode() if isinstance(text, str) else text, to)

    def receive(
        self,
        pump: Callable[[], None],
        timeout: float = 3.0,
        match: Callable[[SipMessage], bool] = lambda m: True,
    ) -> SipMessage:
        """The next message that `match`es, pumping pjsua while waiting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pump()
            try:
                data, source = self.sock.recvfrom(65535)
            except BlockingIOError:
                continue
            message = SipMessage.parse(data)
            self.last_from = source
            if match(message):
                return message
        raise TimeoutError("no matching SIP message")

    def request(
        self,
        method: str,
        ruri: str,
        *,
        call_id: str,
        from_tag: str,
        to: str,
        cseq: int,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
        branch: str | None = None,
    ) -> bytes:
        """A request; `branch` is for a CANCEL or a non-2xx ACK, which reuse the INVITE's."""
        branch = branch or f"z9hG4bK{secrets.token_hex(8)}"
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch={branch}",
            "Max-Forwards: 70",
            f"From: <{self.uri}>;tag={from_tag}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <{self.uri}>",
        ]
        lines += [f"{name}: {value}" for name, value in headers]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    @staticmethod
    def response(
        request: SipMessage,
        code: int,
        reason: str,
        *,
        to_tag: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> bytes:
        to = request.require("to")
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {via}" for via in request.header_values("via")]
        lines += [
            f"From: {request.require('from')}",
            f"To: {to}",
            f"Call-ID: {request.call_id}",
            f"CSeq: {request.require('cseq')}",
        ]
        lines += [f"{name}: {value}" for name, value in headers]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
