"""The request hook against a raw UDP peer and pjsua's own transports."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pytest

from phone.sip.message import SipMessage
from phone.sip.rawsip import OutgoingRequest, RawSip

from .udp_peer import UdpSipPeer


def test_self_test_derives_offsets(raw_sip: RawSip) -> None:
    assert raw_sip.ready


def test_unclaimed_notify_for_no_dialog_gets_481(
    raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any
) -> None:
    peer = UdpSipPeer()
    try:
        target = ("127.0.0.1", sip_transports.udp_port)
        ruri = f"sip:me@127.0.0.1:{sip_transports.udp_port}"
        peer.send(
            peer.request(
                "NOTIFY",
                ruri,
                call_id=secrets.token_hex(8),
                from_tag="f1",
                to=f"<{ruri}>;tag=nosuch",
                cseq=1,
                headers=(("Event", "conference"), ("Subscription-State", "active;expires=60")),
            ),
            target,
        )
        answer = peer.receive(
            lambda: pj_endpoint.libHandleEvents(5), match=lambda m: not m.is_request
        )
        assert answer.status == 481
    finally:
        peer.close()


def test_claimed_request_and_sent_request(
    raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any
) -> None:
    peer = UdpSipPeer()
    seen: list[SipMessage] = []

    def claim(message: SipMessage, respond: Any) -> bool:
        if message.header("x-test") != "claim-me":
            return False
        seen.append(message)
        respond(202, (("Retry-After", "7"), ("Warning", '399 phone "test"')))
        return True

    raw_sip.on_request("MESSAGE", claim)
    try:
        ruri = f"sip:me@127.0.0.1:{sip_transports.udp_port}"
        peer.send(
            peer.request(
                "MESSAGE",
                ruri,
                call_id="c1",
                from_tag="f",
                to=f"<{ruri}>",
                cseq=7,
                headers=(("X-Test", "claim-me"),),
                body=b"hi",
                content_type="text/plain",
            ),
            ("127.0.0.1", sip_transports.udp_port),
        )
        answer = peer.receive(
            lambda: pj_endpoint.libHandleEvents(5), match=lambda m: not m.is_request
        )
        assert answer.status == 202
        assert answer.header("retry-after") == "7"  # headers of a stateless answer,
        assert answer.header("warning") == '399 phone "test"'  # as pjsip parsed and printed them
        assert seen and seen[0].body == b"hi"

        responses: list[SipMessage | None] = []
        raw_sip.send(
            OutgoingRequest(
                "SUBSCRIBE",
                peer.uri,
                f"<{ruri}>;tag=mytag",
                f"<{peer.uri}>;tag=theirs",
                "call-xyz",
                42,
                f"<{ruri}>",
                headers=(("Event", "dialog"), ("Expires", "60"), ("Route", f"<{peer.uri};lr>")),
            ),
            responses.append,
        )
        request = peer.receive(lambda: pj_endpoint.libHandleEvents(5))
        assert request.method == "SUBSCRIBE"
        assert request.from_.tag == "mytag" and request.to.tag == "theirs"
        assert request.call_id == "call-xyz" and request.cseq == (42, "SUBSCRIBE")
        assert request.header("event") == "dialog" and request.header("route")
        assert peer.last_from is not None
        peer.send(
            UdpSipPeer.response(request, 200, "OK", headers=(("Expires", "60"),)), peer.last_from
        )
        assert _final_status(pj_endpoint, responses) == 200
    finally:
        peer.close()


def test_hook_without_self_test_claims_nothing_and_sends_nothing(
    pj_endpoint: Any, sip_transports: Any
) -> None:
    from phone.sip.rawsip import SendError

    hook = RawSip(pj_endpoint)
    try:
        assert not hook.ready
        claimed: list[SipMessage] = []
        hook.on_request("OPTIONS", lambda m, r: bool(claimed.append(m)) or True)
        peer = UdpSipPeer()
        try:
            ruri = f"sip:me@127.0.0.1:{sip_transports.udp_port}"
            peer.send(
                peer.request(
                    "OPTIONS", ruri, call_id="untested", from_tag="f", to=f"<{ruri}>", cseq=1
                ),
                ("127.0.0.1", sip_transports.udp_port),
            )
            answer = peer.receive(
                lambda: pj_endpoint.libHandleEvents(5), match=lambda m: not m.is_request
            )
            assert answer.status == 200 and not claimed  # pjsua answered it, not our handler
        finally:
            peer.close()
        with pytest.raises(SendError):
            hook.send(
                OutgoingRequest(
                    "OPTIONS", ruri, f"<{ruri}>;tag=a", f"<{ruri}>", "x", 1, f"<{ruri}>"
                ),
                lambda response: None,
            )
    finally:
        hook.close()


def test_a_request_the_transport_refuses_is_reported_once(
    raw_sip: RawSip, pj_endpoint: Any, sip_transports: Any
) -> None:
    """No route (here: broadcast, which the socket may not send to) fails inside
    `pjsip_endpt_send_request`; pjsip ends the transaction and reports it before
    returning the error. The caller hears of it once: through the callback."""
    responses: list[SipMessage | None] = []
    target = "sip:255.255.255.255:5060"
    raw_sip.send(
        OutgoingRequest(
            "OPTIONS",
            target,
            "<sip:me@127.0.0.1>;tag=t",
            f"<{target}>",
            secrets.token_hex(8),
            1,
            None,  # no Contact: as a REGISTER that queries bindings
        ),
        responses.append,
    )
    for _ in range(20):
        pj_endpoint.libHandleEvents(5)
    assert responses == [None]


def test_a_transmit_observer_that_fails_is_logged_and_the_request_still_goes(
    raw_sip: RawSip,
    pj_endpoint: Any,
    sip_transports: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """`on_transmit` runs inside pjsip's on_tx_request (a ctypes callback): a
    bug there is logged at ERROR, once per message, and pjsip sends it all the
    same (phone.pjsua_callback.c_callback)."""

    def broken() -> None:
        raise RuntimeError("a bug in the transmit observer")

    peer = UdpSipPeer()
    ruri = f"sip:me@127.0.0.1:{sip_transports.udp_port}"
    responses: list[SipMessage | None] = []
    raw_sip.on_transmit = broken
    try:
        raw_sip.send(
            OutgoingRequest(
                "OPTIONS", peer.uri, f"<{ruri}>;tag=tx", f"<{peer.uri}>", "call-tx", 1, f"<{ruri}>"
            ),
            responses.append,
        )
        request = peer.receive(lambda: pj_endpoint.libHandleEvents(5))
        assert request.method == "OPTIONS" and request.call_id == "call-tx"
    finally:
        raw_sip.on_transmit = None
    try:
        assert peer.last_from is not None
        peer.send(UdpSipPeer.response(request, 200, "OK"), peer.last_from)
        assert _final_status(pj_endpoint, responses) == 200
    finally:
        peer.close()
    errors = {
        (r.name, r.getMessage(), str(r.exc_info and r.exc_info[1]))
        for r in caplog.records
        if r.levelno >= logging.ERROR
    }
    assert errors == {
        ("phone.sip.rawsip", "RawSip._on_tx failed", "a bug in the transmit observer")
    }
    assert "Exception ignored" not in capfd.readouterr().err


def _final_status(ep: Any, responses: list[SipMessage | None]) -> int | None:
    """The status of the first response `RawSip.send` reported, pumping until it came."""
    for _ in range(200):
        ep.libHandleEvents(5)
        if responses:
            break
    assert responses and responses[0] is not None
    return responses[0].status
