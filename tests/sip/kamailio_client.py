"""This process as a client of the test Kamailio, speaking as any of its users.

Tests and bench scripts drive the SIP layer (subscriptions, publications)
against the real server, and sometimes need a user's state on the server
that the code under test does not make: `publish` sends that PUBLISH by hand.
"""

from __future__ import annotations

import secrets
from typing import Any

from phone.sip.digest import Credentials, DigestChallenge
from phone.sip.identity import Identity
from phone.sip.message import SipMessage
from phone.sip.rawsip import OutgoingRequest, RawSip
from phone.sip.subscription import Subscriber
from tests.peers.kamailio import Kamailio
from tests.peers.ports import LISTEN_IP
from tests.sip.stack import LoopClient


def identity(server: Kamailio, user: str, port: int) -> Identity:
    """`user` of `server`, reachable at our UDP `port`, routed through the server."""
    contact = f"<sip:{user}@{LISTEN_IP}:{port}>"
    return Identity(
        aor=server.uri(user),
        contact=lambda target: contact,
        credentials=Credentials(user, server.users[user]),
        route=(f"<sip:{LISTEN_IP}:{server.sip_port};lr>",),
    )


class KamailioClient(LoopClient):
    """The SIP layer in this process as `server`'s users, at our UDP `port`: a
    subscriber as alice (any user by `identity=`), and hand-made PUBLISHes."""

    def __init__(self, ep: Any, raw: RawSip, port: int, server: Kamailio) -> None:
        super().__init__(ep, raw, port)
        self.server = server
        self.subscriber = Subscriber(raw, self.identity("alice"), self.loop)
        self._etags: dict[tuple[str, str], str] = {}

    def close(self) -> None:
        """End every subscription (unSUBSCRIBE, answered), then the loop."""
        self.finish(self.subscriber.close(timeout=2.0))
        self.loop.close()

    def identity(self, user: str) -> Identity:
        return identity(self.server, user, self.port)

    def publish(self, user: str, event: str, content_type: str, body: str) -> None:
        """PUBLISH (RFC 3903) as `user`, answering the proxy's challenge; a modify
        (SIP-If-Match) once `user` has published `event`."""
        me = self.identity(user)
        assert me.credentials is not None
        etag = self._etags.get((user, event))
        answers: list[SipMessage | None] = []
        authorization: tuple[tuple[str, str], ...] = ()
        for cseq in (1, 2):
            headers: tuple[tuple[str, str], ...] = (
                ("Route", me.route[0]),
                ("Event", event),
                ("Expires", "600"),
            )
            headers += authorization + ((("SIP-If-Match", etag),) if etag else ())
            self.raw.send(
                OutgoingRequest(
                    "PUBLISH",
                    me.aor,
                    f"<{me.aor}>;tag={secrets.token_hex(4)}",
                    f"<{me.aor}>",
                    f"pub-{user}-{event}-{secrets.token_hex(4)}",
                    cseq,
                    me.contact(me.aor),
                    headers,
                    content_type,
                    body.encode(),
                ),
                answers.append,
            )
            self.wait(lambda: bool(answers), what="PUBLISH answer")
            answer = answers.pop()
            assert answer is not None and answer.status is not None
            if answer.status == 407:
                challenge = DigestChallenge.parse(answer.require("proxy-authenticate"))
                value = challenge.authorization(me.credentials, "PUBLISH", me.aor)
                authorization = (("Proxy-Authorization", value),)
                continue
            assert answer.status == 200, answer.status
            self._etags[(user, event)] = answer.require("sip-etag")
            return
        raise AssertionError(f"{user}'s PUBLISH of {event} not accepted")
