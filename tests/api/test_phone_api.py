"""Every `PhoneApi` member, used by a plugin inside a whole phone (tests/api/probe_plugin.py).

The phone runs in direct mode on the virtual board. Its peer is a raw SIP UA
on loopback that answers MESSAGE, REFER, chat-only INVITEs and the call the
plugin places. Subscriptions and publications are covered by
the presence plugin's tests against Kamailio (tests/presence/), which use the
same members.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from phone.api import address_key
from phone.hookspecs import CORE_STATE_KEYS
from phone.sip.message import SipMessage
from phone.sip.sdp import SessionDescription, find_message
from tests.peers.ports import free_port
from tests.phones import PhoneFactory, has_call, install_plugin, no_calls, phones
from tests.sip.test_chat_session import BLINK_CHAT
from tests.sip.udp_peer import UdpSipPeer

__all__ = ["phones"]

PROBE = Path(__file__).with_name("probe_plugin.py")


def idle() -> None:
    time.sleep(0.005)


class Notes:
    """What the probe wrote, by step."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self, step: str) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        return [n for n in map(json.loads, lines) if n["step"] == step]

    def wait(self, step: str, count: int = 1, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while len(self.all(step)) < count:
            assert time.monotonic() < deadline, f"the probe never noted {step!r}"
            time.sleep(0.02)
        return self.all(step)[count - 1]


def answer(peer: UdpSipPeer, method: str, code: int, reason: str) -> SipMessage:
    request = peer.receive(idle, timeout=10.0, match=lambda m: m.method == method)
    assert peer.last_from is not None
    peer.send(UdpSipPeer.response(request, code, reason, to_tag="peer"), peer.last_from)
    return request


def is_final(message: SipMessage) -> bool:
    return (message.status or 0) >= 200


def to_phone(peer: UdpSipPeer, phone_uri: str, to: tuple[str, int]) -> Callable[..., None]:
    """Sends the peer's requests to the phone (Call-ID chat-1 unless told)."""

    def send(method: str, call_id: str = "chat-1", **kwargs: Any) -> None:
        peer.send(peer.request(method, phone_uri, call_id=call_id, from_tag="blink", **kwargs), to)

    return send


def test_a_plugin_does_everything_through_phone_api(
    phones: PhoneFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = UdpSipPeer("peer")
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site, "api_probe", "api_probe", PROBE.read_text())
    notes = Notes(tmp_path / "probe.jsonl")
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("API_PROBE_OUT", str(notes.path))
    monkeypatch.setenv("API_PROBE_PEER", peer.uri)
    monkeypatch.setenv("API_PROBE_DIAL", peer.uri)
    a_port = free_port()
    # The probe takes MESSAGEs and chat sessions itself, which the chat plugin would.
    alice, alice_uri = phones.direct("alice", [], port=a_port, plugins={"chat": {"enabled": False}})
    try:
        # Out-of-dialog requests reach the peer as built, and their answers come back.
        message = answer(peer, "MESSAGE", 200, "OK")
        assert message.body == b"hello" and message.content_type == "text/plain"
        assert address_key(message.from_.uri) == address_key(alice_uri)
        assert message.request_uri == peer.uri
        assert notes.wait("message")["status"] == 200
        refer = answer(peer, "REFER", 202, "Accepted")
        assert refer.header("refer-to") == f"<{peer.uri};method=INVITE>"
        assert notes.wait("refer")["status"] == 202
        # Its progress NOTIFYs (RFC 3515), in the dialog the 202 made, until terminated.
        notify = {"call_id": refer.call_id, "from_tag": "peer", "to": refer.require("from")}
        progress = (
            ("refer", "active;expires=60", b"SIP/2.0 100 Trying\r\n", 200),
            ("presence", "active;expires=60", b"SIP/2.0 180 Ringing\r\n", 489),
            ("refer", "active;expires=60", b"not a status line", 400),
            ("refer", "terminated;reason=noresource", b"SIP/2.0 200 OK\r\n", 200),
            ("refer", "terminated;reason=noresource", b"SIP/2.0 200 OK\r\n", 481),
        )
        for cseq, (event, state, body, expected) in enumerate(progress, start=1):
            headers = (("Event", event), ("Subscription-State", state))
            request = peer.request(
                "NOTIFY",
                alice_uri,
                cseq=cseq,
                headers=headers,
                body=body,
                content_type="message/sipfrag",
                **notify,
            )
            peer.send(request, ("127.0.0.1", a_port))
            assert peer.receive(idle, timeout=10.0, match=is_final).status == expected
        notes.wait("refer_progress", count=2)
        assert [(n["status"], n["reason"], n["final"]) for n in notes.all("refer_progress")] == [
            (100, "Trying", False),
            (200, "OK", True),
        ]

        # A MESSAGE to the phone reaches the plugin once, retransmitted or not.
        send = to_phone(peer, alice_uri, ("127.0.0.1", a_port))
        for cseq, body, content_type in ((1, b"hi", "text/plain"), (2, b"<b>hi</b>", "text/html")):
            pager = {"cseq": cseq, "body": body, "content_type": content_type}
            for _ in range(2):
                send("MESSAGE", call_id=f"pager-{cseq}", to=f"<{alice_uri}>", **pager)
                answered = peer.receive(idle, timeout=10.0, match=is_final)
                assert answered.status == (200 if content_type == "text/plain" else 415)
        assert notes.all("message_received") == [
            {"step": "message_received", "sender": peer.uri, "text": "hi"}
        ]
        state = alice.state()  # the core's keys, the probe's and the built-in conference's
        assert set(state) == CORE_STATE_KEYS | {
            "probe",
            "conference",
            "watchers",
            "contacts_source",
        }
        assert state["probe"] == {"received": ["hi"]}

        # The account, the contacts, the LED layer, the footer, the tables.
        account = notes.wait("account")
        assert account == {
            "step": "account",
            "aor": alice_uri,
            "display_name": None,
            "direct": True,
            "domain": "127.0.0.1",
            "credentials": "None",
            "registered": False,
        }
        refused = notes.wait("refused")["errors"]
        assert refused[0] == "the config source's contacts come from the config file"
        assert refused[1].startswith("contact 'Bad': ")
        assert refused[2] == "the 'call' LED layer is the core's"
        contacts = notes.wait("contacts")
        assert contacts["all"] == [["Peer", peer.uri, False], ["Lamp", peer.uri + ";x=1", True]]
        assert (contacts["on_button"], contacts["found"]) == ("Peer", "Peer")
        assert notes.wait("led")["shown"] == {"color": "red", "pattern": "fast"}
        state = alice.state()
        assert state["buttons"]["contact-1"]["label"] == "Peer"
        assert state["buttons"]["contact-1"]["led"] == {"color": "red", "pattern": "fast"}
        assert state["screen"][-1] == "P:1"
        storage = notes.wait("storage")
        assert (storage["version"], storage["rows"]) == (1, ["kept"])
        assert Path(storage["data_dir"]) == tmp_path / "plugins" / "probe"
        assert Path(storage["data_dir"]).is_dir()

        # A chat-only INVITE is answered now that the plugin took chat sessions.
        chat = BLINK_CHAT.format(version=1).encode()
        send("INVITE", to=f"<{alice_uri}>", cseq=1, body=chat, content_type="application/sdp")
        ok = peer.receive(idle, timeout=10.0, match=is_final)
        assert ok.status == 200
        found = find_message(SessionDescription.parse(ok.body.decode()))
        assert found is not None and found[1].path == ("msrp://127.0.0.1:40002/probe;tcp",)
        send("ACK", to=ok.require("to"), cseq=1)
        assert notes.wait("chat_started")["remote"] == peer.uri
        send("BYE", to=ok.require("to"), cseq=2)
        assert peer.receive(idle, timeout=10.0, match=is_final).status == 200
        notes.wait("chat_ended")

        # offer_chat: an INVITE with only m=message; refused, the session ends.
        alice.press("page", hold_ms=1200)
        assert notes.wait("offer_chat")["state"] == "calling"
        offer = answer(peer, "INVITE", 488, "Not Acceptable Here")
        sdp = SessionDescription.parse(offer.body.decode())
        assert [m.kind for m in sdp.media] == ["message"]
        peer.receive(idle, timeout=10.0, match=lambda m: m.method == "ACK")
        alice.press("page", hold_ms=1200)
        assert notes.wait("offered_chat")["state"] == "ended"

        # dial, calls and end_call: the INVITE reaches the peer, rings, then is cancelled.
        alice.press("answer", hold_ms=1200)
        dialled = notes.wait("dial")
        assert (dialled["state"], dialled["calls"]) == ("calling", 1)
        invite = peer.receive(idle, timeout=10.0, match=lambda m: m.method == "INVITE")
        assert invite.request_uri == peer.uri
        assert peer.last_from is not None
        caller = peer.last_from
        peer.send(UdpSipPeer.response(invite, 180, "Ringing", to_tag="callee"), caller)
        alice.wait_for(has_call("ringing"), what="the call rings")
        alice.press("answer", hold_ms=1200)
        assert notes.wait("end_call") == {"step": "end_call", "ended": True, "again": False}
        answer(peer, "CANCEL", 200, "OK")
        peer.send(UdpSipPeer.response(invite, 487, "Request Terminated", to_tag="callee"), caller)
        peer.receive(idle, timeout=10.0, match=lambda m: m.method == "ACK")
        alice.wait_for(no_calls, what="the call ended")
        assert notes.all("call_changed")[-1]["state"] == "disconnected"

        # set_dnd and show_message.
        alice.press("mute", hold_ms=1200)
        state = alice.wait_for(lambda s: s["dnd"])
        assert state["screen"][1:3] == ["probe", "dnd True"]
        assert "plugin api_probe disabled" not in alice.log_tail(400)
    finally:
        peer.close()
    assert alice.stop() == 0
