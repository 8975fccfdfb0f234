"""Hostile presence documents from a raw SIP peer never crash the phone: the LED shows
unknown (off), a log line says why, and the next good document lights it again."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import pytest

from phone.sip.message import MessageError, SipMessage
from tests.phones import PhoneFactory, phones
from tests.sip.udp_peer import UdpSipPeer

__all__ = ["phones"]

pytestmark = pytest.mark.slow

GREEN = {"color": "green", "pattern": "steady"}
OFF = {"color": "off", "pattern": "off"}

GOOD = (
    b'<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{e}">'
    b'<tuple id="t"><status><basic>open</basic></status></tuple></presence>'
)
HOSTILE = {
    "bad XML": b'<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple',
    "external entity": (
        b'<?xml version="1.0"?><!DOCTYPE presence [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:m@x"><tuple id="t">'
        b"<status><basic>open</basic></status><note>&x;</note></tuple></presence>"
    ),
    "billion laughs": (
        b'<?xml version="1.0"?><!DOCTYPE presence [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(8)
        )
        + b']><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:m@x"><note>&i;</note>'
        b"</presence>"
    ),
    "deep nesting": (
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:m@x">'
        + b"<x>" * 5000
        + b"</x>" * 5000
        + b"</presence>"
    ),
    "wrong root": b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"/>',
}


class Registrar:
    """Registrar, presence server and notifier in one raw UDP peer (its own thread)."""

    def __init__(self) -> None:
        self.peer = UdpSipPeer("mallory")
        self.subscribe: SipMessage | None = None
        self.phone_address: tuple[str, int] | None = None
        self.tag = secrets.token_hex(4)
        self.cseq = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                message = self.peer.receive(lambda: None, timeout=0.2)
            except (TimeoutError, MessageError, OSError):
                continue
            if message.method is None:
                continue  # a response to our NOTIFY
            source = self.peer.last_from
            assert source is not None
            headers: tuple[tuple[str, str], ...] = ()
            if message.method == "REGISTER":
                headers = (("Contact", f"{message.require('contact')};expires=300"),)
            elif message.method == "PUBLISH":
                headers = (("SIP-ETag", secrets.token_hex(6)), ("Expires", "600"))
            elif message.method == "SUBSCRIBE":
                headers = (("Expires", "600"), ("Contact", f"<{self.peer.uri}>"))
                event = message.header("event") or ""
                if event == "presence" and "mallory" in message.require("to"):
                    self.subscribe = message
                    self.phone_address = source
                    self._ready.set()
            self.peer.send(
                self.peer.response(message, 200, "OK", to_tag=self.tag, headers=headers), source
            )

    def notify(self, body: bytes) -> None:
        assert self._ready.wait(10), "the phone never subscribed to mallory"
        sub = self.subscribe
        assert sub is not None and self.phone_address is not None
        self.cseq += 1
        contact = sub.require("contact").strip("<>").split(">")[0]
        request = self.peer.request(
            "NOTIFY",
            contact,
            call_id=sub.call_id,
            from_tag=self.tag,
            to=sub.require("from"),
            cseq=self.cseq,
            headers=(("Event", "presence"), ("Subscription-State", "active;expires=600")),
            body=body,
            content_type="application/pidf+xml",
        )
        self.peer.send(request, self.phone_address)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.peer.close()


@pytest.fixture
def registrar() -> Iterator[Registrar]:
    server = Registrar()
    yield server
    server.close()


def test_hostile_documents_leave_the_led_unknown(
    registrar: Registrar, phones: PhoneFactory
) -> None:
    port = registrar.peer.port
    alice = phones.start(
        "alice",
        {
            "uri": f"sip:alice@127.0.0.1:{port}",
            "password": "never-challenged",
            "registrar": f"sip:127.0.0.1:{port}",
        },
        [("Mallory", registrar.peer.uri)],
    )
    good = GOOD.replace(b"{e}", registrar.peer.uri.encode())
    registrar.notify(good)
    alice.wait_for(lambda s: s["buttons"]["contact-1"]["led"] == GREEN, what="good document")
    for what, body in HOSTILE.items():
        registrar.notify(body)
        alice.wait_for(lambda s: s["buttons"]["contact-1"]["led"] == OFF, what=what)
        registrar.notify(good)
        alice.wait_for(lambda s: s["buttons"]["contact-1"]["led"] == GREEN, what=f"after {what}")
    log = (phones.workdir / "alice.log").read_text()
    assert log.count("presence NOTIFY from sip:mallory") == len(HOSTILE)  # one line each
    assert "root:" not in log  # /etc/passwd never read into a note
    assert alice.process is not None and alice.process.poll() is None
