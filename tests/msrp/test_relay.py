"""MSRP relays (RFC 4976): AUTH, Use-Path and Expires against Kamailio's msrp
module, and against a raw relay that answers as MSRPRelay 1.4.0 does (see
/work/shared/notes/interop.md): no answer to a digest carrying `uri=`."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from phone.msrp.endpoint import MsrpEndpoint
from phone.msrp.error import MsrpError
from phone.msrp.message import Frame, new_tid, path_headers, response_to
from phone.msrp.relay import MsrpRelayClient
from phone.msrp.tls import Fingerprint, TlsSettings
from phone.msrp.uri import MsrpUri, parse_path
from phone.sip.digest import Credentials, DigestChallenge
from tests.msrp.rawpeer import RawPeer
from tests.msrp.test_session import Inbox, run


@asynccontextmanager
async def relayed(
    relay: MsrpUri, **client_options: Any
) -> AsyncIterator[tuple[MsrpRelayClient, MsrpRelayClient]]:
    """Alice and Bob, each AUTHed at the relay with their SIP credentials."""
    alice, bob = MsrpEndpoint(), MsrpEndpoint()
    clients = [
        MsrpRelayClient(alice, relay, Credentials("alice", "alicepw"), **client_options),
        MsrpRelayClient(bob, relay, Credentials("bob", "bobpw"), **client_options),
    ]
    try:
        for client in clients:
            await client.connect()
        yield clients[0], clients[1]
    finally:
        for client in clients:
            await client.close()
        await alice.close()
        await bob.close()


@pytest.mark.kamailio
def test_both_sides_through_kamailio(kamailio):
    relay = MsrpUri.parse(kamailio.msrp_relay_uri)
    payload = os.urandom(100_000)

    async def scenario() -> None:
        async with relayed(relay) as (alice, bob):
            assert alice.digest_uri is True  # Kamailio wants uri= in the digest
            assert alice.use_path[0].authority == relay.authority and alice.granted == 3600
            inbox = Inbox()
            # Alice offers a=path: her Use-Path and a URI of hers; Bob answers
            # with his; Alice's session starts once the answer is in.
            a_uri = alice.new_uri()
            b = bob.session((*alice.use_path, a_uri), on_message=inbox)
            a = alice.session(b.local_path, local_uri=a_uri)
            assert a.local_path == b.remote_path
            await asyncio.gather(a.start(active=True), b.start(active=False))
            sent = await a.send_message("text/plain", b"through the relay", success_report=True)
            assert (await inbox.get()).sink.data == b"through the relay"
            await sent.delivered
            await a.send_message("application/octet-stream", payload)  # 25 chunks of 4 kB
            assert (await inbox.get()).sink.data == payload
            reply_inbox = Inbox()
            a.on_message = reply_inbox
            await b.send_message("text/plain", b"and back")
            assert (await reply_inbox.get()).sink.data == b"and back"

    run(scenario())


@pytest.mark.kamailio
def test_wrong_password_is_refused(kamailio):
    relay = MsrpUri.parse(kamailio.msrp_relay_uri)

    async def scenario() -> None:
        endpoint = MsrpEndpoint()
        client = MsrpRelayClient(endpoint, relay, Credentials("alice", "wrong"), probe_timeout=2)
        with pytest.raises(MsrpError) as caught:
            await client.connect()
        assert caught.value.status == 401
        await endpoint.close()

    run(scenario())


async def raw_auth(
    relay: MsrpUri, user: str, password: str
) -> tuple[RawPeer, MsrpUri, tuple[MsrpUri, ...]]:
    """A Blink-style client's AUTH, written by hand: its socket, URI and Use-Path."""
    peer = await RawPeer.connect(relay.host, relay.port or 2855)
    host, port = peer.writer.get_extra_info("sockname")[:2]
    uri = MsrpUri(host, port, "rawbob" + new_tid())
    await peer.write(
        Frame(new_tid(), method="AUTH", headers=path_headers((relay,), (uri,))).encode()
    )
    challenge = DigestChallenge.parse((await peer.next_frame()).header("WWW-Authenticate") or "")
    authorization = challenge.authorization(Credentials(user, password), "AUTH", str(relay))
    headers = [*path_headers((relay,), (uri,)), ("Authorization", authorization)]
    await peer.write(Frame(new_tid(), method="AUTH", headers=headers).encode())
    granted = await peer.next_frame()
    assert granted.status == 200
    return peer, uri, parse_path(granted.header("Use-Path") or "")


@pytest.mark.kamailio
def test_the_end_to_end_200_is_ignored(kamailio):
    """A receiver that answers to the whole From-Path makes Kamailio forward its
    200, so each SEND gets two: the relay's and the receiver's."""
    relay = MsrpUri.parse(kamailio.msrp_relay_uri)

    async def scenario() -> None:
        alice_endpoint = MsrpEndpoint()
        alice = MsrpRelayClient(alice_endpoint, relay, Credentials("alice", "alicepw"))
        await alice.connect()
        bob, bob_uri, bob_use_path = await raw_auth(relay, "bob", "bobpw")
        try:
            a = alice.session((*bob_use_path, bob_uri))

            async def answer_two_sends() -> list[Frame]:
                received = []
                for _ in range(2):
                    send = await bob.next_frame()
                    assert send.method == "SEND" and send.to_path[-1].matches(bob_uri)
                    ok = response_to(send, 200)
                    ok.headers[0] = ("To-Path", " ".join(map(str, send.from_path)))
                    await bob.write(ok.encode())
                    received.append(send)
                return received

            bob_task = asyncio.create_task(answer_two_sends())
            await a.start(active=True)
            await a.send_message("text/plain", b"hello Blink")
            received = await bob_task
            assert received[1].body == b"hello Blink"
            assert a.connection is not None
            async with asyncio.timeout(10):
                while a.connection.stray_responses < 2:
                    await asyncio.sleep(0.05)
            assert not a.closed
        finally:
            bob.close()
            await alice.close()
            await alice_endpoint.close()

    run(scenario())


class MsrpRelayLike:
    """A raw relay answering AUTH as MSRPRelay 1.4.0 does: it wants the opaque
    echoed, ", " between parameters, and never answers a digest with `uri=`."""

    def __init__(self, password: str, expires: int, min_expires: int = 1) -> None:
        self.password = password
        self.expires = expires
        self.min_expires = min_expires
        self.auths: list[tuple[int, Frame]] = []  # (connection number, AUTH)
        self.port = 0
        self._connections = 0

    async def start(self, tls: TlsSettings | None = None) -> asyncio.Server:
        context = tls.server_context() if tls else None
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context)
        self.port = server.sockets[0].getsockname()[1]
        return server

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        number, peer = self._connections, RawPeer(reader, writer)
        try:
            while True:
                auth = await peer.next_frame(timeout=60)
                self.auths.append((number, auth))
                answer = self._answer(auth)
                if answer is not None:
                    await peer.write(answer.encode())
        except (EOFError, ConnectionError, TimeoutError):
            peer.close()

    def _answer(self, auth: Frame) -> Frame | None:
        header = auth.header("Authorization")
        if header is None:
            response = response_to(auth, 401)
            challenge = 'Digest realm="relay.test", nonce="n0nce", opaque="0paque", qop="auth"'
            response.headers.append(("WWW-Authenticate", challenge))
            return response
        if "uri=" in header:
            return None
        fields = dict(part.split("=", 1) for part in header.removeprefix("Digest ").split(", "))
        values = {k: v.strip('"') for k, v in fields.items()}
        digest_uri = str(auth.to_path[0])

        def h(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = h(f"{values['username']}:relay.test:{self.password}")
        expected = h(
            f"{ha1}:n0nce:{values['nc']}:{values['cnonce']}:auth:{h('AUTH:' + digest_uri)}"
        )
        if values.get("opaque") != "0paque" or values["response"] != expected:
            return response_to(auth, 403)
        asked = auth.int_header("Expires")
        if asked is not None and asked < self.min_expires:
            response = response_to(auth, 423)
            response.headers.append(("Min-Expires", str(self.min_expires)))
            return response
        response = response_to(auth, 200)
        scheme = auth.to_path[0].scheme  # base64 session-id, as MSRPRelay's are
        use_path = f"{scheme}://127.0.0.1:{self.port}/aB+c/d==;tcp"
        response.headers += [("Use-Path", use_path), ("Expires", str(asked or self.expires))]
        return response


def test_msrprelay_style_auth_and_refresh():
    async def scenario() -> None:
        relay = MsrpRelayLike("secret", expires=3600, min_expires=2)
        server = await relay.start()
        endpoint = MsrpEndpoint()
        uri = MsrpUri("127.0.0.1", relay.port, "")
        credentials = Credentials("alice", "secret")
        client = MsrpRelayClient(endpoint, uri, credentials, expires=1, probe_timeout=0.5)
        try:
            assert [u.session_id for u in await client.connect()] == ["aB+c/d=="]
            assert client.digest_uri is False  # learned: this relay wants no uri=
            first, second = relay.auths[1][0], relay.auths[3][0]
            assert first != second  # the retry came on a fresh connection
            # 423 with Min-Expires: 2, then the same again asking for 2 seconds.
            assert [a.header("Expires") for _, a in relay.auths[2:6]] == ["1", "1", "2", "2"]
            assert client.expires == client.granted == 2
            async with asyncio.timeout(10):
                while len(relay.auths) < 8:  # a refresh: challenge and answer again
                    await asyncio.sleep(0.05)
            assert {n for n, _ in relay.auths[6:8]} == {second}
            assert client.connection is not None and not client.connection.closed
            wrong = MsrpRelayClient(endpoint, uri, Credentials("alice", "nope"), digest_uri=False)
            with pytest.raises(MsrpError) as caught:
                await wrong.connect()
            assert caught.value.status == 403
        finally:
            await client.close()
            await endpoint.close()
            server.close()

    run(scenario())


def test_relay_over_tls_with_its_fingerprint(certificates):
    relay_tls, _ = certificates

    async def scenario() -> None:
        relay = MsrpRelayLike("secret", expires=600)
        server = await relay.start(relay_tls)
        endpoint = MsrpEndpoint()  # no certificate of our own: a relay needs none
        uri = MsrpUri("127.0.0.1", relay.port, "", secure=True)
        try:
            for fingerprint, status in [
                (relay_tls.fingerprint(), 200),
                (Fingerprint("sha-256", b"x" * 32), 403),
            ]:
                client = MsrpRelayClient(
                    endpoint,
                    uri,
                    Credentials("a", "secret"),
                    digest_uri=False,
                    fingerprint=fingerprint,
                )
                if status == 200:
                    (use_path,) = await client.connect()
                    assert (
                        use_path.secure and client.local_uri is not None and client.local_uri.secure
                    )
                    assert client.connection is not None and client.connection.secure
                else:
                    with pytest.raises(MsrpError) as caught:
                        await client.connect()
                    assert caught.value.status == status
                await client.close()
        finally:
            await endpoint.close()
            server.close()

    run(scenario())
