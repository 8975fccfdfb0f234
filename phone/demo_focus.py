"""A conference focus (RFC 4579, RFC 4575), a raw SIP UA over UDP on loopback,
for the tests and for `phone emulator --demo`'s room.

No focus that does RFC 4579 installs from Debian here (SylkServer's
dependencies are not packaged), so this one plays SylkServer's part towards
the phones, through Kamailio (the tests), or in direct mode without a
registrar (the demo: `registrar=None`, rooms at `room_uri(user)`):

* with a registrar, it REGISTERs each room's user and the factory's user
  (`conference`), so `sip:team@example.test` reaches it; an INVITE to the factory makes a fresh
  room (`room-N`). Every answer's Contact is the room's conference URI with
  `isfocus` (RFC 4579 section 3.3). It mixes no media: the SDP answer points
  at a socket that drops what it gets.
* it keeps the roster, and NOTIFYs `conference` subscribers as SylkServer
  does: full state first, then partial documents with the next `version`
  (RFC 4575 section 4.6), users with one endpoint each carrying `status`,
  `joining-method` and `media`. A refresh gets full state again.
* it takes REFER (RFC 4579 section 5): `method=INVITE` (the default) really
  INVITEs the referred contact through Kamailio, as the factory's user, with
  digest; `method=BYE` ends that participant's leg. The REFER's progress goes
  back in `message/sipfrag` NOTIFYs (RFC 3515). With `allow_removal=False` a
  BYE REFER gets 403, any other method 405.
* it takes the chat stream a phone offers next to the audio (m=message, MSRP,
  RFC 4975), and offers one itself when it dials someone out for a REFER
  (a=setup:actpass, RFC 6135), so everyone in the room has its chat. It
  relays room chat as SylkServer does: a participant's text goes to every
  other participant in CPIM (RFC 3862) whose `From` names the sender, as the
  focus knows them from their INVITE. With `chat=False` it refuses the
  stream (port 0), offers none, and the room is audio only.
* a re-INVITE (RFC 3261 section 14) gets an SDP that fits the call
  (`phone/demo_focus_sdp.py`): hold is answered recvonly and shows as
  `on-hold` in the roster, the chat stays on its MSRP path unless the offer
  moves it (RFC 4975 section 8.4), and one without an offer gets ours, its
  answer read from the ACK.
* over UDP it sends again what a lost datagram needs (`phone/demo_focus_resend.py`):
  its own requests until they are answered (RFC 3261 section 17.1: a request
  with no answer in 64*T1 has timed out, a REFER's INVITE then ends in 408),
  its final response to an INVITE until the ACK (a 2xx with no ACK in 64*T1
  ends the call with a BYE, RFC 3261 section 13.3.1.4), any final response to
  a retransmitted request, and its ACK to a final response that comes again.
* a dial-out that rings unanswered for `timers.ring` (30 s) is CANCELed
  (`phone/demo_focus_ring.py`, RFC 3261 sections 9.1 and 13.2.1), and the
  REFER's final NOTIFY says 487 (408 if no final response follows).
* it answers every request at once, so a CANCEL never finds one pending: it
  gets 200 if it matches a request the focus answered, else 481 (RFC 3261
  section 9.2).

Knobs for the tests: `timers` shortens T1, T2 and the ring limit,
`lose_next_version` skips one version number, `notify_raw` sends any body to
a room's subscribers, `stop()` vanishes without a BYE. Everything runs on
the focus's own asyncio loop in a thread; the public methods are called from
the test's thread.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import secrets
import socket
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from phone.demo_focus_resend import DEFAULT_TIMERS, Resender, Timers
from phone.demo_focus_ring import RingLimit, cancel_for, expires, time_out
from phone.demo_focus_sdp import FocusSdp
from phone.msrp.chunks import IncomingMessage, MemorySink
from phone.msrp.endpoint import MsrpEndpoint
from phone.msrp.error import MsrpError
from phone.msrp.session import MsrpSession
from phone.msrp.uri import MsrpUri, parse_path
from phone.payloads import conference, cpim, sipfrag
from phone.payloads.error import PayloadError
from phone.payloads.sequence import DocumentState
from phone.sip.digest import Credentials, DigestChallenge
from phone.sip.message import NameAddr, SipMessage, header_params
from phone.sip.sdp import (
    MediaSection,
    MessageSession,
    SdpError,
    SessionDescription,
    SetupRole,
    answer_section,
    find_message,
    message_section,
    offered_session,
)
from phone.uri import parse_sip_uri

log = logging.getLogger(__name__)

FACTORY = "conference"
FACTORY_PASSWORD = "conferencepw"
EXPIRES = 600

LISTEN_IP = "127.0.0.1"
SDP = "application/sdp"
# Room chat: CPIM, carrying plain text (RFC 3862), as SylkServer relays it.
CHAT_ACCEPT = ("message/cpim",)
CHAT_WRAPPED = ("text/plain",)

_T = TypeVar("_T")


class Registrar(Protocol):
    """Where the rooms register (the tests' Kamailio), on LISTEN_IP."""

    @property
    def domain(self) -> str: ...

    @property
    def sip_port(self) -> int: ...


def focus_users(rooms: dict[str, str]) -> dict[str, str]:
    """The Kamailio users a focus with `rooms` (user -> subject) registers."""
    return {FACTORY: FACTORY_PASSWORD, **{user: f"{user}pw" for user in rooms}}


def _branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


@dataclass
class Leg:
    """One dialog of the focus (a participant's call, a subscription, a REFER's)."""

    call_id: str
    local: str  # our From/To value, with our tag
    remote: str  # theirs, with their tag
    target: str  # their Contact URI
    routes: list[str]
    cseq: int = 0


@dataclass
class RoomChat:
    """A participant's room chat: its MSRP session and what the SDP agreed."""

    local: MsrpUri
    agreed: MessageSession
    line: MediaSection  # our message line: same path, our role as agreed
    session: MsrpSession


@dataclass
class Member:
    entity: str  # the participant's AOR
    display: str | None
    leg: Leg | None  # None for a guest the test adds without a call
    joining: conference.JoiningMethod
    status: conference.EndpointStatus = conference.EndpointStatus.CONNECTED
    sdp: FocusSdp | None = None  # what the focus said in their call (None for a guest)
    chat: RoomChat | None = None  # the room chat stream of their call
    # A 200 of ours offered (the INVITE had no offer): the answer comes in the ACK.
    awaiting_answer: bool = False
    # A new chat stream in our offer, not answered yet: our URI and line.
    offered_chat: tuple[MsrpUri, MediaSection] | None = None

    def user(self, state: conference.ElementState) -> conference.User:
        endpoint = conference.Endpoint(
            entity=self.entity,
            state=state,
            display_text=self.display,
            status=self.status,
            joining_method=self.joining,
            media=(conference.Media(id="1", type="audio", status=conference.MediaStatus.SENDRECV),),
        )
        return conference.User(
            entity=self.entity, state=state, display_text=self.display, endpoints=(endpoint,)
        )


@dataclass
class Watcher:
    leg: Leg
    version: int = 0


@dataclass
class Room:
    user: str
    subject: str
    uri: str  # the conference URI: the focus's Contact
    members: dict[str, Member] = field(default_factory=dict)
    watchers: list[Watcher] = field(default_factory=list)


class Focus:
    """The focus; `start()` registers it with `registrar` (if any), `stop()` vanishes."""

    def __init__(
        self,
        registrar: Registrar | None,
        rooms: dict[str, str],
        *,
        allow_removal: bool = True,
        chat: bool = True,
        timers: Timers = DEFAULT_TIMERS,
    ) -> None:
        self.registrar = registrar
        self.domain = LISTEN_IP if registrar is None else registrar.domain
        self.proxy = None if registrar is None else (LISTEN_IP, registrar.sip_port)
        self.allow_removal = allow_removal
        self.chat = chat
        self.relayed: list[tuple[str, str]] = []  # room chat relayed: (sender, text)
        self.lose_next_version = False
        self.refreshes = 0  # SUBSCRIBE refreshes seen (a lost version brings one)
        self.rooms: dict[str, Room] = {}
        self._room_subjects = dict(rooms)
        self._fresh = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="focus", daemon=True)
        self._transport: asyncio.DatagramTransport | None = None
        self._media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._media.bind((LISTEN_IP, 0))
        self._msrp = MsrpEndpoint(LISTEN_IP, 0)
        self.port = 0
        # Our requests awaiting their final response, by top Via branch and method.
        self._pending: dict[
            tuple[str, str], tuple[asyncio.Future[SipMessage], Callable[[SipMessage], None]]
        ] = {}
        self._resender = Resender(self._loop, self._send, timers, self._no_ack)
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- from the test's thread -------------------------------------------
    def start(self) -> Focus:
        self._thread.start()
        self._run(self._start())
        return self

    def stop(self) -> None:
        """Vanish: no BYE, no final NOTIFY, the socket closed, every task of the
        focus ended before its loop stops."""
        if not self._thread.is_alive():
            return
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
        self._media.close()

    def room_uri(self, user: str) -> str:
        return f"sip:{user}@{LISTEN_IP}:{self.port}"

    def roster(self, user: str) -> list[str]:
        """The entities (AORs) connected in room `user`, in joining order."""

        async def read() -> list[str]:
            room = self.rooms.get(user)
            return [] if room is None else list(room.members)

        return self._run(read())

    def only_room(self) -> str:
        """The user part of the one room that exists (a fresh one made by the factory)."""

        async def read() -> str:
            (user,) = self.rooms
            return user

        return self._run(read())

    def add_guest(self, user: str, entity: str, display: str | None = None) -> None:
        """Put `entity` in room `user` without a call (a partial NOTIFY follows);
        the room is made if nobody is in it yet."""

        async def add() -> None:
            room = self._room_for(self.room_uri(user))
            if room is None:
                raise KeyError(f"no room {user!r}")
            guest = Member(entity, display, None, conference.JoiningMethod.DIALED_OUT)
            self._join(room, guest)

        self._run(add())

    def remove_guest(self, user: str, entity: str) -> None:
        async def remove() -> None:
            self._leave(self.rooms[user], entity)

        self._run(remove())

    def notify_raw(self, user: str, body: bytes) -> None:
        """NOTIFY `body` as conference-info to every subscriber of room `user`."""

        async def send() -> None:
            for watcher in self.rooms[user].watchers:
                await self._notify(watcher.leg, "conference", body, conference.CONTENT_TYPE)

        self._run(send())

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run `coroutine` on the focus's loop; its requests may wait 64*T1 each."""
        limit = 2 * self._resender.timers.lifetime
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(limit)

    # -- on the focus's loop ----------------------------------------------
    async def _start(self) -> None:
        self._transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(LISTEN_IP, 0)
        )
        self.port = self._transport.get_extra_info("sockname")[1]
        await self._msrp.listen()
        if self.registrar is not None:
            for user in [FACTORY, *self._room_subjects]:
                await self._register(user)

    async def _close(self) -> None:
        """Nothing more in or out, and every task cancelled and awaited: a task
        the loop never finishes is destroyed pending (asyncio logs it)."""
        await self._msrp.close()
        self._resender.close()
        if self._transport is not None:
            self._transport.close()
        while self._tasks:  # a task may spawn another as it ends
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)

    def _spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _credentials(self, user: str) -> Credentials:
        return Credentials(user, focus_users(self._room_subjects)[user])

    async def _register(self, user: str) -> None:
        aor = f"sip:{user}@{self.domain}"
        leg = Leg(
            secrets.token_hex(8),
            f"<{aor}>;tag={secrets.token_hex(4)}",
            f"<{aor}>",
            f"sip:{self.domain}",
            [],
        )
        headers = [("Contact", f"<{self.room_uri(user)}>"), ("Expires", "3600")]
        response = await self._request("REGISTER", leg, headers, user=user, dest=self.proxy)
        if response.status != 200:
            raise RuntimeError(f"focus: REGISTER {user} got {response.status}")

    # -- sending ------------------------------------------------------------
    def _send(self, data: bytes, address: tuple[str, int]) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, address)

    def _destination(self, leg: Leg) -> tuple[str, int]:
        if leg.routes and self.proxy is not None:
            return self.proxy
        uri = parse_sip_uri(leg.target)
        return uri.host, uri.port or 5060

    async def _request(
        self,
        method: str,
        leg: Leg,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        content_type: str | None = None,
        *,
        user: str | None = None,
        dest: tuple[str, int] | None = None,
        on_provisional: Callable[[SipMessage], None] | None = None,
        ring: float | None = None,
    ) -> SipMessage:
        """Send a request in `leg` (a new CSeq), again until answered, and wait for
        its final response; a 401/407 is answered once with `user`'s digest.
        TimeoutError when 64*T1 pass without one (for an INVITE: without any
        response). An INVITE may ring for `ring` seconds, then it is CANCELed
        (`phone/demo_focus_ring.py`); without `ring` it may ring for ever."""
        authorization: tuple[str, str] | None = None
        if ring is not None:
            headers = [*headers, expires(ring)]
        for _ in range(2):
            leg.cseq += 1
            branch = _branch()
            lines = [
                f"{method} {leg.target} SIP/2.0",
                f"Via: SIP/2.0/UDP {LISTEN_IP}:{self.port};branch={branch};rport",
                "Max-Forwards: 70",
                f"From: {leg.local}",
                f"To: {leg.remote}",
                f"Call-ID: {leg.call_id}",
                f"CSeq: {leg.cseq} {method}",
                *(f"Route: {route}" for route in leg.routes),
                *(f"{name}: {value}" for name, value in headers),
            ]
            if authorization is not None:
                lines.append(f"{authorization[0]}: {authorization[1]}")
            if content_type is not None:
                lines.append(f"Content-Type: {content_type}")
            data = _wire(lines, body)
            where = dest or self._destination(leg)
            future: asyncio.Future[SipMessage] = self._loop.create_future()
            provisional = on_provisional or (lambda _: None)
            limit: RingLimit | None = None
            if ring is not None:
                cancel = functools.partial(self._spawn_cancel, data, branch, where)
                lifetime = self._resender.timers.lifetime
                limit = RingLimit(self._loop, ring, lifetime, future, cancel)
                provisional = functools.partial(_rang, limit, provisional)
            try:
                response = await self._transact(future, method, branch, data, where, provisional)
            finally:
                if limit is not None:
                    limit.stop()
            if method == "INVITE":
                self._ack(leg, response, branch, dest)
            if response.status in (401, 407) and user is not None and authorization is None:
                name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
                challenge = DigestChallenge.parse(response.require(name.lower()))
                header = "Authorization" if response.status == 401 else "Proxy-Authorization"
                value = challenge.authorization(self._credentials(user), method, leg.target)
                authorization = (header, value)
                continue
            return response
        return response

    async def _transact(
        self,
        future: asyncio.Future[SipMessage],
        method: str,
        branch: str,
        data: bytes,
        where: tuple[str, int],
        on_provisional: Callable[[SipMessage], None],
    ) -> SipMessage:
        """Send our request `data` (`method`, its top Via `branch`) to `where`, again
        until answered; `future` gets its final response, or TimeoutError (Timer B or F)."""
        self._pending[branch, method] = (future, on_provisional)
        self._send(data, where)
        timed_out = functools.partial(time_out, future, f"no answer to {method} in 64*T1")
        self._resender.sent_request(method, branch, data, where, timed_out)
        try:
            return await future
        finally:
            self._pending.pop((branch, method), None)

    def _spawn_cancel(self, invite: bytes, branch: str, where: tuple[str, int]) -> None:
        self._spawn(self._cancel(invite, branch, where))

    async def _cancel(self, invite: bytes, branch: str, where: tuple[str, int]) -> None:
        """CANCEL our INVITE `invite` (RFC 3261 section 9.1), sent again like any
        non-INVITE request; its 200 says nothing of the INVITE, whose 487 (or
        2xx, if it crossed the CANCEL) ends the wait."""
        request = SipMessage.parse(invite)
        log.info("focus: %s rang unanswered too long, CANCEL", request.request_uri)
        future: asyncio.Future[SipMessage] = self._loop.create_future()
        try:
            response = await self._transact(
                future, "CANCEL", branch, _wire(cancel_for(request)), where, lambda _: None
            )
        except TimeoutError:
            log.info("focus: CANCEL to %s unanswered", request.request_uri)
            return
        if response.status != 200:
            log.info("focus: CANCEL to %s got %s", request.request_uri, response.status)

    def _ack(
        self, leg: Leg, response: SipMessage, branch: str, dest: tuple[str, int] | None
    ) -> None:
        """ACK a final response to our INVITE: a non-2xx in its transaction, a 2xx in the dialog."""
        status = response.status or 0
        if 200 <= status < 300:
            leg.remote = response.require("to")
            contact = response.header("contact")
            if contact:
                leg.target = NameAddr.parse(contact).uri
            leg.routes = list(reversed(response.header_values("record-route")))
            branch = _branch()
        lines = [
            f"ACK {leg.target} SIP/2.0",
            f"Via: SIP/2.0/UDP {LISTEN_IP}:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: {leg.local}",
            f"To: {response.require('to')}",
            f"Call-ID: {leg.call_id}",
            f"CSeq: {leg.cseq} ACK",
            *(f"Route: {route}" for route in (leg.routes if status < 300 else [])),
        ]
        where = (self._destination(leg) if status < 300 else dest) or self._destination(leg)
        data = _wire(lines)
        self._resender.sent_ack(response, data, where)
        self._send(data, where)

    def _respond(
        self,
        request: SipMessage,
        address: tuple[str, int],
        status: int,
        reason: str,
        *,
        tag: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        to = request.require("to")
        if tag is not None and "tag" not in NameAddr.parse(to).params:
            to += f";tag={tag}"
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {value}" for key, value in request.headers if key == "via"]
        if status < 300:
            lines += [f"Record-Route: {v}" for k, v in request.headers if k == "record-route"]
        lines += [
            f"From: {request.require('from')}",
            f"To: {to}",
            f"Call-ID: {request.call_id}",
            f"CSeq: {request.require('cseq')}",
            *(f"{name}: {value}" for name, value in headers or []),
        ]
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        data = _wire(lines, body)
        if status >= 200:
            self._resender.responded(request, status, data, address)
        self._send(data, address)

    # -- receiving ----------------------------------------------------------
    def received(self, data: bytes, address: tuple[str, int]) -> None:
        if not data.strip():
            return
        message = SipMessage.parse(data)
        if not message.is_request:
            branch = header_params(message.require("via"))[1].get("branch", "")
            self._resender.answered(message)
            pending = self._pending.get((branch, message.cseq[1]))
            if pending is None:
                self._resender.repeat_ack(message)
                return
            future, on_provisional = pending
            if (message.status or 0) < 200:
                on_provisional(message)
            elif not future.done():
                future.set_result(message)
            return
        if message.method == "ACK":
            self._resender.acknowledged(message)
            self._on_ack(message)
            return
        if self._resender.repeat_response(message, address):
            return
        handler = {
            "INVITE": self._on_invite,
            "BYE": self._on_bye,
            "SUBSCRIBE": self._on_subscribe,
            "REFER": self._on_refer,
            "OPTIONS": self._on_options,
            "CANCEL": self._on_cancel,
        }.get(message.method or "")
        if handler is None:
            self._respond(message, address, 405, "Method Not Allowed")
        else:
            handler(message, address)

    def _no_ack(self, call_id: str) -> None:
        """Our 2xx to an INVITE got no ACK in 64*T1: the session ends with a BYE
        (RFC 3261 section 13.3.1.4)."""
        found = self._member_in(call_id)
        if found is not None:
            room, member = found
            log.info("focus: no ACK from %s, hanging up", member.entity)
            self._spawn(self._hang_up(room, member))

    def _on_options(self, request: SipMessage, address: tuple[str, int]) -> None:
        self._respond(request, address, 200, "OK")

    def _on_cancel(self, request: SipMessage, address: tuple[str, int]) -> None:
        """RFC 3261 section 9.2. The focus answers every request at once, so no
        CANCEL finds one pending: one for a request we answered gets 200 and
        changes nothing, one matching no request of ours gets 481."""
        if self._resender.answered_request(request):
            self._respond(request, address, 200, "OK")
        else:
            self._respond(request, address, 481, "Call/Transaction Does Not Exist")

    def _room_for(self, request_uri: str) -> Room | None:
        user = parse_sip_uri(request_uri).user or ""
        if user == FACTORY:
            user = f"room-{next(self._fresh)}"
            self._room_subjects.setdefault(user, f"Room {user.removeprefix('room-')}")
        if user not in self._room_subjects:
            return None
        if user not in self.rooms:
            self.rooms[user] = Room(user, self._room_subjects[user], self.room_uri(user))
        return self.rooms[user]

    def _uas_leg(self, request: SipMessage, tag: str) -> Leg:
        to = request.require("to")
        if "tag" not in NameAddr.parse(to).params:
            to += f";tag={tag}"
        contact = request.header("contact")
        return Leg(
            request.call_id,
            to,
            request.require("from"),
            NameAddr.parse(contact).uri if contact else request.from_.uri,
            list(request.header_values("record-route")),
            cseq=secrets.randbelow(1000),
        )

    def _contact(self, room: Room) -> tuple[str, str]:
        return ("Contact", f"<{room.uri}>;isfocus")

    def _on_invite(self, request: SipMessage, address: tuple[str, int]) -> None:
        if request.to.tag is not None:
            self._on_reinvite(request, address)
            return
        room = self._room_for(request.request_uri or "")
        if room is None:
            self._respond(request, address, 404, "No Such Room")
            return
        try:
            offer = _offer(request)
        except SdpError as exc:
            self._refuse_sdp(request, address, exc)
            return
        tag = secrets.token_hex(4)
        leg = self._uas_leg(request, tag)
        from_ = request.from_
        entity = parse_sip_uri(from_.uri).aor
        text = request.require("from")
        display = text.partition("<")[0].strip().strip('"') if "<" in text else ""
        member = Member(entity, display or None, leg, conference.JoiningMethod.DIALED_IN)
        member.sdp = FocusSdp(LISTEN_IP, self._media.getsockname()[1])
        self._respond(
            request,
            address,
            200,
            "OK",
            tag=tag,
            headers=[self._contact(room), ("Allow", "INVITE, ACK, BYE, CANCEL, SUBSCRIBE, REFER")],
            body=self._session_sdp(room, member, offer),
            content_type=SDP,
        )
        self._join(room, member)

    def _on_reinvite(self, request: SipMessage, address: tuple[str, int]) -> None:
        """A re-INVITE (RFC 3261 section 14): a new answer, or an offer when it has
        none; an SDP we cannot read gets 488 and the session stays as it was."""
        found = self._member_in(request.call_id)
        if found is None:
            self._respond(request, address, 481, "Call/Transaction Does Not Exist")
            return
        room, member = found
        try:
            offer = _offer(request)
        except SdpError as exc:
            self._refuse_sdp(request, address, exc)
            return
        body = self._session_sdp(room, member, offer)
        headers = [self._contact(room)]
        self._respond(request, address, 200, "OK", headers=headers, body=body, content_type=SDP)
        self._hold_changed(room, member)

    def _refuse_sdp(self, request: SipMessage, address: tuple[str, int], exc: SdpError) -> None:
        log.info("focus: unreadable SDP from %s: %s", request.from_.uri, exc)
        self._respond(request, address, 488, "Not Acceptable Here")

    def _on_ack(self, request: SipMessage) -> None:
        """The ACK of a 200 that offered carries the answer (RFC 3261 section 13.2.1)."""
        found = self._member_in(request.call_id)
        if found is None or not found[1].awaiting_answer:
            return
        room, member = found
        member.awaiting_answer = False
        self._took_answer(room, member, request.body)

    def _session_sdp(self, room: Room, member: Member, offer: SessionDescription | None) -> bytes:
        """Our SDP in a 200 to `member`'s INVITE: the answer to `offer`, or, when it
        came without one, an offer (the room's chat again, or a new one at first)."""
        assert member.sdp is not None
        member.awaiting_answer = offer is None
        if offer is not None:
            return member.sdp.answer(offer, self._chat_answer(room, member, offer))
        if member.chat is not None:
            return member.sdp.offer(member.chat.line)
        member.offered_chat = None if member.sdp.media else self._chat_offer()
        return member.sdp.offer(None if member.offered_chat is None else member.offered_chat[1])

    def _hold_changed(self, room: Room, member: Member) -> None:
        """A participant who holds the call (sendonly or inactive audio, RFC 3264
        section 8.4) is on hold in the roster (RFC 4575 section 5.7.1)."""
        assert member.sdp is not None
        held = member.sdp.offered_direction in ("sendonly", "inactive")
        status = conference.EndpointStatus.ON_HOLD if held else conference.EndpointStatus.CONNECTED
        if status is not member.status:
            log.info("focus: %s is %s", member.entity, status.value)
            member.status = status
            self._spawn(self._changed(room, member.user(conference.ElementState.FULL)))

    def _member_in(self, call_id: str) -> tuple[Room, Member] | None:
        """The participant whose call has `call_id`, and their room."""
        for room in self.rooms.values():
            for member in room.members.values():
                if member.leg is not None and member.leg.call_id == call_id:
                    return room, member
        return None

    # -- room chat (MSRP) ---------------------------------------------------
    def _chat_answer(
        self, room: Room, member: Member, offer: SessionDescription
    ) -> MediaSection | None:
        """Our line for the offer's message line: the chat goes on while the offer
        keeps its path (RFC 4975 section 8.4), a new path is a new session, and
        none (or `chat=False`) ends it; None refuses the line."""
        try:
            found = find_message(offer) if self.chat else None
        except SdpError as exc:
            log.info("focus: chat stream of %s refused: %s", member.entity, exc)
            found = None
        chat = member.chat
        if chat is not None and found is not None and found[1].path == chat.agreed.remote_path:
            return chat.line
        self._end_chat(member, "the chat stream changed")
        if found is None:
            return None
        local = self._msrp.new_uri()
        try:
            section, agreed = answer_section(found[1], (str(local),), CHAT_ACCEPT, CHAT_WRAPPED)
            self._open_chat(room, member, local, agreed, section.protocol)
        except (SdpError, MsrpError) as exc:
            log.info("focus: chat stream of %s refused: %s", member.entity, exc)
            return None
        return section

    def _chat_offer(self) -> tuple[MsrpUri, MediaSection] | None:
        """A chat stream to offer (none with `chat=False`): our URI and its message
        line; the answerer picks who connects (RFC 6135)."""
        if not self.chat:
            return None
        local = self._msrp.new_uri()
        section = message_section(
            (str(local),),
            setup=SetupRole.ACTPASS,
            accept_types=CHAT_ACCEPT,
            accept_wrapped_types=CHAT_WRAPPED,
        )
        return local, section

    def _took_answer(self, room: Room, member: Member, answer: bytes) -> None:
        """`member`'s answer to our offer: its message line keeps the chat (same
        path), moves it (a new path), starts the one we offered, or declines it."""
        try:
            found = find_message(SessionDescription.parse(answer.decode(errors="replace")))
        except SdpError as exc:
            log.info("focus: the answer of %s is unusable: %s", member.entity, exc)
            found = None
        offered, member.offered_chat = member.offered_chat, None
        chat = member.chat
        if chat is not None:
            if found is not None and found[1].path == chat.agreed.remote_path:
                return
            self._end_chat(member, "the chat stream changed")
            offered = (chat.local, chat.line)
        if offered is None:
            return
        if found is None:
            log.info("focus: %s declined the chat stream", member.entity)
            return
        local, line = offered
        try:
            self._open_chat(room, member, local, offered_session(line, found[1]), line.protocol)
        except (SdpError, MsrpError) as exc:
            log.info("focus: chat stream of %s not usable: %s", member.entity, exc)

    def _open_chat(
        self, room: Room, member: Member, local: MsrpUri, agreed: MessageSession, protocol: str
    ) -> None:
        """`member`'s room chat: relayed to the room, set up as the SDP agreed."""
        session = self._msrp.session(
            local,
            parse_path(" ".join(agreed.remote_path)),
            accept_types=(*CHAT_ACCEPT, *CHAT_WRAPPED),
            on_message=lambda message: self._relay(room, member, message),
        )
        line = message_section(
            agreed.local_path,
            setup=agreed.local_setup,
            accept_types=CHAT_ACCEPT,
            accept_wrapped_types=CHAT_WRAPPED,
            protocol=protocol,
        )
        member.chat = RoomChat(local, agreed, line, session)
        self._spawn(self._start_chat(member, session, agreed.we_connect))

    def _end_chat(self, member: Member, reason: str) -> None:
        chat, member.chat = member.chat, None
        if chat is not None:
            chat.session.close(reason)

    async def _start_chat(self, member: Member, session: MsrpSession, active: bool) -> None:
        try:
            await session.start(active=active)
        except MsrpError as exc:
            log.info("focus: chat with %s not set up: %s", member.entity, exc)

    def _relay(self, room: Room, sender: Member, message: IncomingMessage) -> None:
        """A participant's text to every other participant, in CPIM whose `From` is
        the sender as the focus knows them (not what they claim), as SylkServer does."""
        assert isinstance(message.sink, MemorySink)
        content_type, body = message.content_type or "", message.sink.data
        if content_type.lower().startswith(cpim.CONTENT_TYPE):
            try:
                wrapped = cpim.parse(body)
            except PayloadError as exc:
                log.info("focus: bad CPIM from %s: %s", sender.entity, exc)
                return
            content_type, body = wrapped.content_type, wrapped.body
        if not content_type.lower().startswith("text/plain"):
            return  # is-composing and receipts stay between the phone and the focus
        self.relayed.append((sender.entity, body.decode(errors="replace")))
        relayed = cpim.CpimMessage(
            content_type=content_type,
            body=body,
            sender=cpim.Identity(sender.entity, sender.display),
            recipients=(cpim.Identity(room.uri),),
            timestamp=datetime.now(UTC),
        )
        for member in room.members.values():
            if member is not sender and member.chat is not None:
                self._spawn(self._send_chat(member, member.chat.session, cpim.build(relayed)))

    async def _send_chat(self, member: Member, session: MsrpSession, data: bytes) -> None:
        try:
            await session.send_message(cpim.CONTENT_TYPE, data)
        except MsrpError as exc:
            log.info("focus: chat to %s not sent: %s", member.entity, exc)

    def _join(self, room: Room, member: Member) -> None:
        log.info("focus: %s joins %s", member.entity, room.user)
        room.members[member.entity] = member
        self._spawn(self._changed(room, member.user(conference.ElementState.FULL)))

    def _leave(self, room: Room, entity: str) -> None:
        member = room.members.pop(entity, None)
        if member is None:
            return
        log.info("focus: %s leaves %s", entity, room.user)
        self._end_chat(member, "left the room")
        deleted = conference.User(entity=entity, state=conference.ElementState.DELETED)
        self._spawn(self._changed(room, deleted))

    def _on_bye(self, request: SipMessage, address: tuple[str, int]) -> None:
        self._respond(request, address, 200, "OK")
        for room in self.rooms.values():
            for entity, member in list(room.members.items()):
                if member.leg is not None and member.leg.call_id == request.call_id:
                    self._leave(room, entity)

    # -- conference-info ----------------------------------------------------
    def _document(
        self, room: Room, version: int, users: tuple[conference.User, ...], full: bool
    ) -> bytes:
        return conference.build(
            conference.ConferenceInfo(
                entity=room.uri,
                version=version,
                state=DocumentState.FULL if full else DocumentState.PARTIAL,
                description=conference.Description(subject=room.subject),
                conference_state=conference.ConferenceState(
                    user_count=len(room.members), active=True
                ),
                users=users,
            )
        )

    async def _full_state(self, room: Room, watcher: Watcher, expires: int) -> None:
        watcher.version += 1
        users = tuple(m.user(conference.ElementState.FULL) for m in room.members.values())
        body = self._document(room, watcher.version, users, full=True)
        await self._notify(
            watcher.leg, "conference", body, conference.CONTENT_TYPE, f"active;expires={expires}"
        )

    async def _changed(self, room: Room, user: conference.User) -> None:
        skip = self.lose_next_version
        self.lose_next_version = False
        for watcher in list(room.watchers):
            watcher.version += 2 if skip else 1
            body = self._document(room, watcher.version, (user,), full=False)
            await self._notify(watcher.leg, "conference", body, conference.CONTENT_TYPE)

    async def _notify(
        self,
        leg: Leg,
        event: str,
        body: bytes,
        content_type: str,
        state: str = "active",
    ) -> SipMessage | None:
        headers = [("Event", event), ("Subscription-State", state)]
        try:
            return await self._request("NOTIFY", leg, headers, body, content_type)
        except TimeoutError:
            log.info("focus: NOTIFY to %s unanswered", leg.target)
            return None

    def _on_subscribe(self, request: SipMessage, address: tuple[str, int]) -> None:
        event = header_params(request.header("event") or "")[0]
        room = self._subscribed_room(request)
        if event != "conference" or room is None:
            self._respond(request, address, 489 if room else 404, "Bad Event")
            return
        expires = min(int(request.header("expires") or EXPIRES), EXPIRES)
        watcher = next((w for w in room.watchers if w.leg.call_id == request.call_id), None)
        if watcher is None:
            watcher = Watcher(self._uas_leg(request, secrets.token_hex(4)))
            if expires:
                room.watchers.append(watcher)
        else:
            self.refreshes += 1
        tag = NameAddr.parse(watcher.leg.local).tag
        headers = [self._contact(room), ("Expires", str(expires))]
        self._respond(request, address, 200, "OK", tag=tag, headers=headers)
        if expires == 0:
            if watcher in room.watchers:
                room.watchers.remove(watcher)
            self._spawn(self._final_notify(watcher))
        else:
            self._spawn(self._full_state(room, watcher, expires))

    async def _final_notify(self, watcher: Watcher) -> None:
        await self._notify(
            watcher.leg, "conference", b"", conference.CONTENT_TYPE, "terminated;reason=timeout"
        )

    def _subscribed_room(self, request: SipMessage) -> Room | None:
        user = parse_sip_uri(request.request_uri or "").user or ""
        return self.rooms.get(user)

    # -- REFER (RFC 4579 section 5) -----------------------------------------
    def _on_refer(self, request: SipMessage, address: tuple[str, int]) -> None:
        room = self._subscribed_room(request)
        refer_to = request.header("refer-to")
        if room is None or refer_to is None:
            self._respond(request, address, 404 if room is None else 400, "Bad REFER")
            return
        target = parse_sip_uri(NameAddr.parse(refer_to).uri)
        method = (target.params.get("method") or "INVITE").upper()
        if method == "BYE" and not self.allow_removal:
            self._respond(request, address, 403, "Forbidden")
            return
        if method not in ("INVITE", "BYE"):
            self._respond(request, address, 405, "Method Not Allowed")
            return
        tag = secrets.token_hex(4)
        self._respond(request, address, 202, "Accepted", tag=tag, headers=[self._contact(room)])
        leg = self._uas_leg(request, tag)
        if method == "BYE":
            self._spawn(self._remove(room, target.aor, leg))
        else:  # dial the URI as given (a direct-mode phone's port included)
            params = {k: v for k, v in target.params.items() if k != "method"}
            self._spawn(self._dial_out(room, str(replace(target, params=params, headers={})), leg))

    async def _progress(self, leg: Leg, status: int, reason: str, final: bool) -> None:
        body = f"SIP/2.0 {status} {reason}\r\n".encode()
        state = "terminated;reason=noresource" if final else "active;expires=60"
        await self._notify(leg, "refer", body, sipfrag.CONTENT_TYPE, state)

    async def _remove(self, room: Room, aor: str, refer_leg: Leg) -> None:
        member = room.members.get(aor)
        if member is None:
            await self._progress(refer_leg, 481, "Call Does Not Exist", True)
            return
        status, reason = await self._hang_up(room, member)
        await self._progress(refer_leg, status, reason, True)

    async def _hang_up(self, room: Room, member: Member) -> tuple[int, str]:
        """End `member`'s call with a BYE and take them out of the room; the BYE's answer."""
        status, reason = 200, "OK"
        if member.leg is not None:
            try:
                response = await self._request("BYE", member.leg, [])
                status, reason = response.status or 500, response.reason
            except TimeoutError:
                status, reason = 408, "Request Timeout"
        self._leave(room, member.entity)
        return status, reason

    async def _dial_out(self, room: Room, uri: str, refer_leg: Leg) -> None:
        await self._progress(refer_leg, 100, "Trying", False)
        aor = f"sip:{FACTORY}@{self.domain}"
        leg = Leg(
            secrets.token_hex(8),
            f'"{room.subject}" <{aor}>;tag={secrets.token_hex(4)}',
            f"<{uri}>",
            uri,
            [],
        )
        sent: set[int] = set()

        def provisional(response: SipMessage) -> None:
            status = response.status or 0
            if status > 100 and status not in sent:
                sent.add(status)
                self._spawn(self._progress(refer_leg, status, response.reason, False))

        sdp = FocusSdp(LISTEN_IP, self._media.getsockname()[1])
        chat = self._chat_offer()
        try:
            response = await self._request(
                "INVITE",
                leg,
                [self._contact(room), ("Allow", "INVITE, ACK, BYE, CANCEL, SUBSCRIBE, REFER")],
                sdp.offer(None if chat is None else chat[1]),
                SDP,
                user=FACTORY,
                dest=self.proxy,
                on_provisional=provisional,
                ring=self._resender.timers.ring,
            )
        except TimeoutError:  # Timer B (no response at all), or no final one after CANCEL
            await self._progress(refer_leg, 408, "Request Timeout", True)
            return
        status = response.status or 500
        await self._progress(refer_leg, status, response.reason, True)
        if 200 <= status < 300:
            joining = conference.JoiningMethod.DIALED_OUT
            member = Member(parse_sip_uri(uri).aor, None, leg, joining, sdp=sdp, offered_chat=chat)
            self._took_answer(room, member, response.body)
            self._join(room, member)


def _wire(lines: list[str], body: bytes = b"") -> bytes:
    """A message's start line and headers, its Content-Length, and `body`."""
    return ("\r\n".join([*lines, f"Content-Length: {len(body)}"]) + "\r\n\r\n").encode() + body


def _rang(
    limit: RingLimit, on_provisional: Callable[[SipMessage], None], response: SipMessage
) -> None:
    """A provisional response to an INVITE with a ring limit."""
    limit.rang()
    on_provisional(response)


def _offer(request: SipMessage) -> SessionDescription | None:
    """An INVITE's offer, None when it has none; SdpError when it is unreadable."""
    if not request.body:
        return None
    return SessionDescription.parse(request.body.decode(errors="replace"))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, focus: Focus) -> None:
        self.focus = focus

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.focus.received(data, addr)
        except Exception:
            log.exception("focus: cannot handle %r", data[:80])
