"""The test peers themselves: Kamailio answers as documented and baresip talks to it.

Every other SIP test trusts these peers, so their own behaviour (digest
challenges per RFC 3261 section 22, XCAP per RFC 4825, restart keeping state)
is checked here against the real processes.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from tests.peers import ports
from tests.peers.baresip import Baresip, BaresipError, Presence
from tests.peers.kamailio import (
    DEFAULT_USERS,
    DOMAIN,
    LISTEN_IP,
    Kamailio,
    KamailioError,
    sip_options,
)
from tests.peers.process import log_marks, logs_since

pytestmark = pytest.mark.kamailio

PRES_RULES = "pres-rules"


def sip_request(server: Kamailio, method: str, request_uri: str, from_user: str) -> str:
    """Send one credential-less request over UDP and return the whole response."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LISTEN_IP, 0))
        sock.settimeout(2.0)
        port = sock.getsockname()[1]
        branch = "z9hG4bK" + secrets.token_hex(8)
        to = server.uri(from_user) if method == "REGISTER" else request_uri
        request = (
            f"{method} {request_uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LISTEN_IP}:{port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <{server.uri(from_user)}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <{to}>\r\n"
            f"Call-ID: {secrets.token_hex(8)}@{LISTEN_IP}\r\n"
            f"CSeq: 1 {method}\r\n"
            f"Contact: <sip:{from_user}@{LISTEN_IP}:{port}>\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (LISTEN_IP, server.sip_port))
        while True:
            response = sock.recv(65535).decode()
            if not response.startswith("SIP/2.0 1"):
                return response


def header(response: str, name: str) -> str:
    for line in response.split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    raise AssertionError(f"no {name} header in:\n{response}")


def test_options_answered_over_udp_and_tcp(kamailio: Kamailio) -> None:
    assert sip_options(kamailio.sip_port, transport="udp") == "SIP/2.0 200 Keepalive"
    assert sip_options(kamailio.sip_port, transport="tcp") == "SIP/2.0 200 Keepalive"


def test_register_without_credentials_is_challenged(kamailio: Kamailio) -> None:
    response = sip_request(kamailio, "REGISTER", f"sip:{DOMAIN}", "alice")
    assert response.startswith("SIP/2.0 401 ")
    challenge = header(response, "WWW-Authenticate")
    assert challenge.startswith("Digest ")
    assert f'realm="{DOMAIN}"' in challenge
    assert "qop=" in challenge


def test_switches_drop_qop_and_request_auth(make_kamailio: Callable[..., Kamailio]) -> None:
    server = make_kamailio(qop=False, authenticate_requests=False)
    challenge = header(
        sip_request(server, "REGISTER", f"sip:{DOMAIN}", "alice"), "WWW-Authenticate"
    )
    assert "qop" not in challenge
    # bob is not registered: without request auth the MESSAGE reaches the location lookup.
    response = sip_request(server, "MESSAGE", server.uri("bob"), "alice")
    assert response.startswith("SIP/2.0 404 ")


def test_requests_from_local_users_need_proxy_auth(kamailio: Kamailio) -> None:
    response = sip_request(kamailio, "MESSAGE", kamailio.uri("bob"), "alice")
    assert response.startswith("SIP/2.0 407 ")
    assert f'realm="{DOMAIN}"' in header(response, "Proxy-Authenticate")


def test_xcap_put_then_get_with_digest(make_kamailio: Callable[..., Kamailio]) -> None:
    kamailio = make_kamailio()  # private: the shared server's alice keeps no pres-rules
    url = kamailio.xcap_url("alice", PRES_RULES)
    document = kamailio.xcap_example("allow-local-pres-rules")
    auth = httpx.DigestAuth("alice", kamailio.users["alice"])
    with httpx.Client(timeout=5.0) as client:
        put = client.put(
            url,
            content=document,
            auth=auth,
            headers={"Content-Type": "application/auth-policy+xml"},
        )
        assert put.status_code in (200, 201), put.text
        got = client.get(url, auth=auth)
        assert got.status_code == 200
        assert got.content.strip() == document.strip()
        assert got.headers["ETag"]

        assert client.get(url).status_code == 401
        bob = httpx.DigestAuth("bob", kamailio.users["bob"])
        assert client.get(url, auth=bob).status_code == 403


def test_restart_keeps_ports_and_documents(make_kamailio: Callable[..., Kamailio]) -> None:
    server = make_kamailio()
    ports, pid = server.ports, server.pid
    document = server.xcap_example("carol-pres-rules")
    server.xcap_put("carol", PRES_RULES, document)

    server.restart()

    assert server.running
    assert server.pid != pid
    assert server.ports == ports
    assert sip_options(server.sip_port, transport="tcp") == "SIP/2.0 200 Keepalive"
    auth = httpx.DigestAuth("carol", server.users["carol"])
    got = httpx.get(server.xcap_url("carol", PRES_RULES), auth=auth)
    assert got.content.strip() == document.strip()


def test_failed_start_reports_the_log(make_kamailio: Callable[..., Kamailio]) -> None:
    server = make_kamailio()
    server.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((LISTEN_IP, server.sip_port))
        with pytest.raises(KamailioError, match="(?s)exited.*last lines"):
            server.restart()
    assert not server.running


def test_extra_users_register(
    make_kamailio: Callable[..., Kamailio], baresip: Callable[..., Baresip]
) -> None:
    users = {f"u{n:03d}": f"pw{n:03d}" for n in range(1, 101)}
    server = make_kamailio(extra_users=users)
    assert server.users == {**DEFAULT_USERS, **users}
    agent = baresip("u100", server)
    agent.wait_registered()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers_with_digest(
    kamailio: Kamailio, baresip: Callable[..., Baresip], transport: str
) -> None:
    agent = baresip("alice", kamailio, transport=transport)
    registered = agent.wait_registered(timeout=5.0)
    assert agent.started_at is not None
    assert registered >= agent.started_at
    assert "OK" in agent.command("reginfo")


def test_baresip_wrong_password_fails_registration(
    kamailio: Kamailio, baresip: Callable[..., Baresip]
) -> None:
    agent = baresip("bob", kamailio, password="not-bobs")
    with pytest.raises(BaresipError, match="401"):
        agent.wait_registered(timeout=5.0)


def test_baresip_call_through_kamailio(kamailio: Kamailio, baresip: Callable[..., Baresip]) -> None:
    caller = baresip("alice", kamailio)
    callee = baresip("bob", kamailio)
    caller.wait_registered()
    callee.wait_registered()

    caller.dial(kamailio.uri("bob"))
    callee.wait_event("CALL_INCOMING")
    callee.answer()
    callee.wait_event("CALL_ESTABLISHED")
    caller.wait_event("CALL_ESTABLISHED")
    caller.wait_event("CALL_RTPESTAB")

    caller.hangup()
    callee.wait_event("CALL_CLOSED")


def test_baresip_local_account_without_registrar(baresip: Callable[..., Baresip]) -> None:
    callee = baresip("dora", auto_answer=True)
    caller = baresip("erin")
    caller.dial(callee.contact_uri)
    callee.wait_event("CALL_ESTABLISHED")
    caller.wait_event("CALL_ESTABLISHED")
    callee.hangup()
    caller.wait_event("CALL_CLOSED")


def test_baresip_publishes_and_watches_presence(
    make_kamailio: Callable[..., Kamailio], baresip: Callable[..., Baresip]
) -> None:
    server = make_kamailio()
    server.allow_watchers("alice")
    alice = baresip("alice", server)
    alice.wait_registered()
    watcher = baresip("carol", server, watch=[server.uri("alice"), server.uri("bob")])
    watcher.wait_registered()

    watcher.wait_presence(server.uri("alice"), "online")
    alice.presence(Presence.OFFLINE)
    watcher.wait_presence(server.uri("alice"), "offline")
    alice.presence("online")
    watcher.wait_presence(server.uri("alice"), "online")
    # bob has no pres-rules, so the subscription to him stays pending.
    assert watcher.watched_presence()[server.uri("bob")] == "Unknown"
    with pytest.raises(ValueError):
        alice.presence("away")


def test_start_retries_when_a_chosen_port_is_taken(
    monkeypatch: pytest.MonkeyPatch,
    make_kamailio: Callable[..., Kamailio],
    baresip: Callable[..., Baresip],
) -> None:
    """Another test run may bind a port between our choice and the peer's bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((LISTEN_IP, 0))
        taken = squatter.getsockname()[1]
        real_free_ports = ports.free_ports
        offered: list[int] = []
        squat_next = [True]

        def squatted(*kinds: ports.PortKind) -> tuple[int, ...]:
            """The squatter's port as the SIP port of a peer's first choice."""
            chosen = real_free_ports(*kinds)
            if squat_next.pop():
                chosen = (taken, *chosen[1:])
            squat_next.append(False)
            offered.append(chosen[0])
            return chosen

        monkeypatch.setattr(ports, "free_ports", squatted)
        server = make_kamailio()
        assert offered == [taken, server.sip_port]
        squat_next[:] = [True]
        agent = baresip("alice", server)
        assert offered[2:] == [taken, agent.sip_port]
        agent.wait_registered()


def test_a_peer_dead_before_its_stop_fails_its_close(kamailio: Kamailio) -> None:
    agent = Baresip("alice", kamailio)  # not from the fixture: the test closes it
    agent.start()
    assert agent.pid is not None
    os.kill(agent.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while agent.running and time.monotonic() < deadline:  # as a crash looks: dead before the stop
        time.sleep(0.01)
    with pytest.raises(BaresipError, match="exited by itself with status -9 before the stop"):
        agent.close()
    assert agent.config_dir is None  # its files are gone all the same


def test_a_failing_test_is_shown_what_its_peers_logged_meanwhile(
    kamailio: Kamailio, baresip: Callable[..., Baresip]
) -> None:
    marks = log_marks()
    agent = baresip("bob", kamailio)
    agent.wait_registered()
    sections = dict(logs_since(marks))
    assert "200 OK" in sections["baresip bob log (last lines)"]
