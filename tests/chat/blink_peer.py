"""A chat client as Blink is on the wire, for tests: a chat-only INVITE
(m=message only, a=setup:actpass, CPIM accepted) through a proxy with
digest, or a file push (RFC 5547 a=file-selector, a=sendonly), then MSRP
with `phone.msrp`, directly or through an MSRP relay (RFC 4976).

SIP is a raw UA over UDP (`tests/sip/udp_peer.py`), waited on in a thread
so the MSRP side keeps running on the test's event loop.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from phone.msrp.chunks import IncomingMessage, MemorySink
from phone.msrp.connection import MsrpConnection
from phone.msrp.endpoint import MsrpEndpoint
from phone.msrp.message import Frame
from phone.msrp.relay import MsrpRelayClient
from phone.msrp.sdp import FileSelector, fingerprint_line
from phone.msrp.session import MsrpSession
from phone.msrp.tls import TlsSettings
from phone.msrp.uri import MsrpUri, format_path, parse_path
from phone.payloads import cpim
from phone.sip.digest import Credentials, DigestChallenge
from phone.sip.message import SipMessage
from phone.sip.sdp import SessionDescription, find_message
from phone.uri import parse_name_addr
from tests.sip.udp_peer import UdpSipPeer

CHAT_LINES = ("a=accept-types:message/cpim text/plain", "a=accept-wrapped-types:*")


@dataclass
class Inbox:
    """What the peer received over MSRP, as (content type, body)."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self, message: IncomingMessage) -> None:
        assert isinstance(message.sink, MemorySink)
        self.messages.append((message.content_type or "", message.sink.data))
        self.arrived.set()

    def texts(self) -> list[str]:
        """The text/plain bodies of the CPIM messages."""
        out = []
        for content_type, body in self.messages:
            if content_type == cpim.CONTENT_TYPE:
                message = cpim.parse(body)
                if message.content_type.startswith("text/plain"):
                    out.append(message.body.decode())
        return out

    async def wait_text(self, timeout: float = 5.0) -> str:
        async with asyncio.timeout(timeout):
            while not self.texts():
                self.arrived.clear()
                await self.arrived.wait()
        return self.texts()[-1]


@dataclass
class ChatCall:
    """One session the peer started: its SIP dialog and its MSRP session."""

    call_id: str
    from_tag: str
    to: str
    remote_target: str
    route: tuple[str, ...]
    answer: SessionDescription
    msrp: MsrpSession
    inbox: Inbox
    status: int
    audio_port: int | None = None  # an audio line beside the chat: a call with chat
    sdp_version: int = 1  # of our last SDP (o= line): a new one counts up


class OffererEndpoint(MsrpEndpoint):
    """An endpoint that takes the answerer's first SEND before the SDP answer
    arrived, as msrplib (Blink) does: a session whose answer is pending is
    found by its To-Path alone, and the peer's path set when the answer comes."""

    def __init__(self, tls: TlsSettings | None) -> None:
        super().__init__("127.0.0.1", 0, tls=tls)
        self.pending: dict[str, MsrpSession] = {}

    def route(self, frame: Frame, connection: MsrpConnection) -> MsrpSession:
        session = self.pending.get(frame.to_path[0].session_id)
        if session is not None and len(frame.to_path) == 1:
            session.remote_path = (frame.from_path[-1],)  # until the answer says
        return super().route(frame, connection)


class BlinkPeer:
    def __init__(
        self,
        user: str,
        password: str,
        domain: str,
        proxy: tuple[str, int],
        relay: MsrpUri | None = None,
        tls: TlsSettings | None = None,
    ) -> None:
        """With `tls`, offers are TCP/TLS/MSRP (msrps) with its fingerprint."""
        self.sip = UdpSipPeer(user)
        self.tls = tls
        self.aor = f"sip:{user}@{domain}"
        self.credentials = Credentials(user, password)
        self.proxy = proxy
        self.endpoint = OffererEndpoint(tls)
        self.relay = (
            None if relay is None else MsrpRelayClient(self.endpoint, relay, self.credentials)
        )
        self._cseq = 0
        self.moved_to: list[OffererEndpoint] = []  # endpoints `move` opened
        self.moved_relays: list[MsrpRelayClient] = []  # and their relay connections

    async def start(self) -> None:
        if self.relay is None:
            await self.endpoint.listen()
        else:
            await self.relay.connect()

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
        for client in self.moved_relays:
            await client.close()
        for endpoint in (*self.moved_to, self.endpoint):
            await endpoint.close()
        self.sip.close()

    async def receive(self, match: object, timeout: float = 5.0) -> SipMessage:
        return await asyncio.to_thread(
            self.sip.receive,
            lambda: time.sleep(0.002),
            timeout,
            match,  # type: ignore[arg-type]
        )

    def new_uri(self) -> tuple[MsrpUri, tuple[MsrpUri, ...]]:
        """A URI of ours for a new session, and our a=path."""
        if self.relay is None:
            uri = self.endpoint.new_uri()
            return uri, (uri,)
        uri = self.relay.new_uri()
        return uri, (*self.relay.use_path, uri)

    async def chat(
        self,
        target: str,
        *,
        file: FileSelector | None = None,
        setup: str = "actpass",
        start: bool = True,
        audio_port: int | None = None,
    ) -> ChatCall:
        """INVITE `target` with one m=message line: a chat, or a push of `file`;
        with `audio_port`, a call (PCMU to that port) with chat beside it. Once
        answered 200, ACK and (with `start`) set up the MSRP session."""
        uri, path = self.new_uri()
        inbox = Inbox()
        options: dict[str, Any] = {"on_message": inbox.take}
        if self.relay is not None:
            msrp = self.relay.session((uri,), local_uri=uri, **options)
        else:
            msrp = self.endpoint.session(uri, (uri,), **options)
        self.endpoint.pending[uri.session_id] = msrp
        lines = [f"a=path:{' '.join(str(u) for u in path)}", *CHAT_LINES, f"a=setup:{setup}"]
        if self.tls is not None:
            lines.append(fingerprint_line(self.tls.fingerprint()))
        if file is not None:
            lines = [
                f"a=path:{' '.join(str(u) for u in path)}",
                f"a=accept-types:{file.content_type}",
                f"a=setup:{setup}",
                "a=sendonly",
                f"a=file-selector:{file}",
                f"a=file-transfer-id:{secrets.token_hex(8)}",
            ]
        sdp = self._sdp(path[-1].port, lines, 1, audio_port)
        call_id, from_tag = secrets.token_hex(8), secrets.token_hex(4)
        headers: tuple[tuple[str, str], ...] = ()
        for _ in range(2):
            self._cseq += 1
            branch = f"z9hG4bK{secrets.token_hex(8)}"
            invite = dict(call_id=call_id, from_tag=from_tag, to=f"<{target}>", cseq=self._cseq)
            self.sip.send(
                self.sip.request(
                    "INVITE", target, **invite, headers=headers, body=sdp,  # type: ignore[arg-type]
                    content_type="application/sdp", branch=branch, from_uri=self.aor,
                ),
                self.proxy,
            )  # fmt: skip
            response = await self.receive(
                lambda m: m.status is not None and m.status >= 200 and m.call_id == call_id
            )
            if response.status not in (401, 407):
                break
            ack = dict(invite, to=response.require("to"))
            self.sip.send(
                self.sip.request("ACK", target, **ack, branch=branch, from_uri=self.aor),  # type: ignore[arg-type]
                self.proxy,
            )
            name = "proxy-authenticate" if response.status == 407 else "www-authenticate"
            challenge = DigestChallenge.parse(response.require(name))
            value = challenge.authorization(self.credentials, "INVITE", target)
            header = "Proxy-Authorization" if response.status == 407 else "Authorization"
            headers = ((header, value),)
        self.endpoint.pending.pop(uri.session_id, None)
        if response.status != 200:
            msrp.close("refused")
            return ChatCall(call_id, from_tag, "", "", (), SessionDescription((), ()), msrp,
                            inbox, response.status or 0)  # fmt: skip
        _, contact = parse_name_addr(response.require("contact"))
        route = tuple(reversed(response.header_values("record-route")))
        answer = SessionDescription.parse(response.body.decode())
        call = ChatCall(call_id, from_tag, response.require("to"), str(contact), route, answer,
                        msrp, inbox, 200, audio_port)  # fmt: skip
        self._in_dialog(call, "ACK", self._cseq)
        found = find_message(answer)
        assert found is not None, "the answer has no m=message line"
        msrp.remote_path = parse_path(" ".join(found[1].path))
        if start:
            await msrp.start(
                active=found[1].setup is not None and found[1].setup.value == "passive"
            )
        return call

    def _sdp(
        self, port: int, lines: list[str], version: int, audio_port: int | None,
        secure: bool | None = None,
    ) -> bytes:  # fmt: skip
        """Our SDP; the message line in msrps with `secure`, by default if we have TLS."""
        audio = "" if audio_port is None else (
            f"m=audio {audio_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        )  # fmt: skip
        secure = self.tls is not None if secure is None else secure
        return (
            f"v=0\r\no=- 1 {version} IN IP4 127.0.0.1\r\ns=Blink\r\nc=IN IP4 127.0.0.1\r\n"
            f"t=0 0\r\n{audio}m=message {port} {'TCP/TLS/MSRP' if secure else 'TCP/MSRP'} *\r\n"
            + "".join(f"{line}\r\n" for line in lines)
        ).encode()

    async def move(
        self,
        call: ChatCall,
        *,
        setup: str = "actpass",
        path: str | None = None,
        start: bool = True,
        relay: MsrpUri | None = None,
        tls: TlsSettings | None = None,
    ) -> SipMessage:
        """Move the chat as Blink does on another network (RFC 4975 section 8.4): a
        re-INVITE whose a=path is a new session on a new endpoint of ours (another
        port: another address), through `relay` (RFC 4976) if given, or `path`
        (somewhere nobody listens, say); with `tls`, the new endpoint is msrps
        (TCP/TLS/MSRP, RFC 4975 section 8.5) with that certificate. The old
        session is left as it is; `call` carries the new one once the 200
        came, set up (with `start`) as the answer's a=setup says (a 200 whose
        message line is at port 0 carries none)."""
        tls = tls or self.tls
        endpoint = OffererEndpoint(tls)
        self.moved_to.append(endpoint)
        inbox = Inbox()
        if relay is None:
            await endpoint.listen()
            uri = endpoint.new_uri()
            msrp = endpoint.session(uri, (uri,), on_message=inbox.take)
            new_path: tuple[MsrpUri, ...] = (uri,)
        else:
            client = MsrpRelayClient(endpoint, relay, self.credentials)
            self.moved_relays.append(client)
            await client.connect()
            uri = client.new_uri()
            msrp = client.session((uri,), local_uri=uri, on_message=inbox.take)
            new_path = (*client.use_path, uri)
        endpoint.pending[uri.session_id] = msrp
        lines = [f"a=path:{path or format_path(new_path)}", *CHAT_LINES, f"a=setup:{setup}"]
        if tls is not None:
            lines.append(fingerprint_line(tls.fingerprint()))
        call.sdp_version += 1
        sdp = self._sdp(
            new_path[-1].port, lines, call.sdp_version, call.audio_port, tls is not None
        )
        response = await self._reinvite(call, sdp)
        endpoint.pending.pop(uri.session_id, None)
        found = None
        if response.status == 200:
            found = find_message(SessionDescription.parse(response.body.decode()))
        if found is not None and path is None:
            msrp.remote_path = parse_path(" ".join(found[1].path))
            call.msrp, call.inbox = msrp, inbox
            if start:
                await msrp.start(
                    active=found[1].setup is not None and found[1].setup.value == "passive",
                    timeout=5,
                )
        return response

    async def close_chat(self, call: ChatCall) -> SipMessage:
        """End the chat of `call` while its audio goes on: a re-INVITE with the
        message line at port 0 (RFC 3264 section 8.2); the phone's answer."""
        call.sdp_version += 1
        response = await self._reinvite(call, self._sdp(0, [], call.sdp_version, call.audio_port))
        call.msrp.close("we ended the chat")
        return response

    async def _reinvite(self, call: ChatCall, sdp: bytes) -> SipMessage:
        """Send a re-INVITE with `sdp` in `call`, ACK its final answer and return it."""
        self._cseq += 1
        cseq = self._cseq
        self._in_dialog(call, "INVITE", cseq, sdp)
        response = await self.receive(
            lambda m: m.status is not None and m.status >= 200 and m.call_id == call.call_id
            and m.cseq == (cseq, "INVITE")
        )  # fmt: skip
        self._in_dialog(call, "ACK", cseq)
        return response

    async def take_reoffer(self, call: ChatCall) -> SessionDescription:
        """Wait for the phone's re-INVITE in `call`, answer it 200 (the audio as it
        was, every other line declined, as RFC 3264 section 6 wants for a line
        offered at port 0), wait for its ACK and return the offer."""
        invite = await self.receive(lambda m: m.method == "INVITE" and m.call_id == call.call_id)
        offer = SessionDescription.parse(invite.body.decode())
        audio = "" if call.audio_port is None else (
            f"m=audio {call.audio_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        )  # fmt: skip
        declined = "".join(
            f"m={m.kind} 0 {m.protocol} {' '.join(m.formats)}\r\n"
            for m in offer.media if m.kind != "audio"
        )  # fmt: skip
        call.sdp_version += 1
        sdp = (
            f"v=0\r\no=- 1 {call.sdp_version} IN IP4 127.0.0.1\r\ns=Blink\r\n"
            f"c=IN IP4 127.0.0.1\r\nt=0 0\r\n{audio}{declined}"
        ).encode()
        self.sip.send(
            self.sip.response(invite, 200, "OK", headers=(("Contact", f"<{self.sip.uri}>"),),
                              body=sdp, content_type="application/sdp"),
            self.sip.last_from or self.proxy,
        )  # fmt: skip
        await self.receive(lambda m: m.method == "ACK" and m.call_id == call.call_id)
        return offer

    async def bye(self, call: ChatCall) -> None:
        """End the session; returns once the phone answered (it has ended it too)."""
        self._cseq += 1
        self._in_dialog(call, "BYE", self._cseq)
        await self.receive(
            lambda m: m.status is not None and m.call_id == call.call_id and m.cseq[1] == "BYE"
        )

    def _in_dialog(self, call: ChatCall, method: str, cseq: int, sdp: bytes = b"") -> None:
        headers = tuple(("Route", r) for r in call.route)
        self.sip.send(
            self.sip.request(
                method, call.remote_target, call_id=call.call_id, from_tag=call.from_tag,
                to=call.to, cseq=cseq, headers=headers, from_uri=self.aor, body=sdp,
                content_type="application/sdp" if sdp else None,
            ),
            self.proxy,
        )  # fmt: skip

    async def send_text(
        self, call: ChatCall, text: str, to: str, content_type: str = "text/plain"
    ) -> None:
        """Text as Blink sends it: text/plain (or is-composing) in CPIM."""
        message = cpim.CpimMessage(
            content_type=content_type,
            body=text.encode(),
            sender=cpim.Identity(self.aor),
            recipients=(cpim.Identity(to),),
        )
        await call.msrp.send_message(cpim.CONTENT_TYPE, cpim.build(message))

    async def register(self, registrar: str) -> None:
        """REGISTER our UDP address for our AOR, with digest, so the proxy routes to us."""
        call_id, from_tag = secrets.token_hex(8), secrets.token_hex(4)
        headers: tuple[tuple[str, str], ...] = (("Expires", "300"),)
        for _ in range(2):
            self._cseq += 1
            self.sip.send(
                self.sip.request(
                    "REGISTER", registrar, call_id=call_id, from_tag=from_tag,
                    to=f"<{self.aor}>", cseq=self._cseq, headers=headers, from_uri=self.aor,
                ),
                self.proxy,
            )  # fmt: skip
            response = await self.receive(lambda m: (m.status or 0) >= 200 and m.call_id == call_id)
            if response.status != 401:
                break
            challenge = DigestChallenge.parse(response.require("www-authenticate"))
            value = challenge.authorization(self.credentials, "REGISTER", registrar)
            headers = (("Expires", "300"), ("Authorization", value))
        assert response.status == 200, f"REGISTER answered {response.status}"

    async def take_chat(self, *, accept: bool) -> ChatCall | None:
        """Wait for a chat-only INVITE: answer 200 with our m=message line
        (a=setup:passive; the offerer connects) and return the session once
        set up (`inbox`: what arrives on it), or refuse it with 488 and
        return None."""
        invite = await self.receive(lambda m: m.method == "INVITE")
        reply = self.sip.last_from or self.proxy
        if not accept:
            self.sip.send(self.sip.response(invite, 488, "Not Acceptable Here", to_tag="b"), reply)
            return None
        offer = find_message(SessionDescription.parse(invite.body.decode()))
        assert offer is not None, "a chat INVITE without m=message"
        uri, path = self.new_uri()
        inbox = Inbox()
        remote = parse_path(" ".join(offer[1].path))
        msrp = self.endpoint.session(uri, remote, on_message=inbox.take)
        lines = [f"a=path:{' '.join(str(u) for u in path)}", *CHAT_LINES, "a=setup:passive"]
        sdp = self._sdp(uri.port, lines, 1, None)
        headers = (("Contact", f"<{self.sip.uri}>"),) + tuple(
            ("Record-Route", rr) for rr in invite.header_values("record-route")
        )
        self.sip.send(
            self.sip.response(invite, 200, "OK", to_tag="b", headers=headers, body=sdp,
                              content_type="application/sdp"),
            reply,
        )  # fmt: skip
        await msrp.start(active=False)
        _, contact = parse_name_addr(invite.require("contact"))
        # The dialog as its callee sees it: our tag "b", the route as recorded.
        return ChatCall(invite.call_id, "b", invite.require("from"), str(contact),
                        tuple(invite.header_values("record-route")),
                        SessionDescription.parse(sdp.decode()), msrp, inbox, 200)  # fmt: skip

    async def take_message(self) -> SipMessage:
        """Wait for a pager MESSAGE and answer it 200."""
        message = await self.receive(lambda m: m.method == "MESSAGE")
        self.sip.send(self.sip.response(message, 200, "OK"), self.sip.last_from or self.proxy)
        return message
