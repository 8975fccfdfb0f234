"""The demo focus over UDP when a datagram is lost (RFC 3261 sections 13.2.2.4,
13.3.1.4 and 17), against raw UDP peers that drop an ACK on purpose: its 2xx
goes again until the ACK and a 2xx never ACKed ends the call with a BYE; its
ACK goes again when a final response to its INVITE comes again; a retransmitted
request gets the same response. T1 and T2 are shortened so 64*T1 is 6.4 s."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from phone.demo_focus import Focus
from phone.demo_focus_resend import Timers
from phone.sip.message import SipMessage
from tests.conference.test_focus_sdp import Dialog, answering, offer
from tests.sip.udp_peer import UdpSipPeer

TIMERS = Timers(t1=0.1, t2=0.4)
GIVE_UP = TIMERS.lifetime + 5  # how long to wait for what comes after 64*T1
ANSWER = (
    b"v=0\r\no=erin 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4010 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


@pytest.fixture
def focus() -> Iterator[Focus]:
    focus = Focus(None, {"team": "Team meeting"}, timers=TIMERS).start()
    yield focus
    focus.stop()


@pytest.fixture
def peers() -> Iterator[Callable[[str], UdpSipPeer]]:
    made: list[UdpSipPeer] = []

    def peer(user: str) -> UdpSipPeer:
        made.append(UdpSipPeer(user))
        return made[-1]

    yield peer
    for each in made:
        each.close()


def entity(peer: UdpSipPeer) -> str:
    return peer.uri.rpartition(":")[0]


def is_method(method: str) -> Callable[[SipMessage], bool]:
    return lambda message: message.method == method


def drain(peer: UdpSipPeer) -> list[SipMessage]:
    """What has come to `peer` and not been read."""
    messages = []
    while True:
        try:
            data, _ = peer.sock.recvfrom(65535)
        except BlockingIOError:
            return messages
        messages.append(SipMessage.parse(data))


def responses_until(peer: UdpSipPeer, method: str) -> list[SipMessage]:
    """The responses that come to `peer` up to the first to a `method` request."""
    got: list[SipMessage] = []

    def last(message: SipMessage) -> bool:
        if message.status is not None:
            got.append(message)
        return message.status is not None and message.cseq[1] == method

    peer.receive(lambda: None, match=last)
    return got


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GIVE_UP
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_2xx_goes_again_until_its_ack_and_without_one_the_call_ends(
    focus: Focus, peers: Callable[[str], UdpSipPeer]
) -> None:
    dave, erin = peers("dave"), peers("erin")
    late = Dialog(dave, focus)  # dave's ACK is lost once: it comes late
    answer = late.invite(offer().to_text().encode())
    assert answer.status == 200
    assert dave.receive(lambda: None, match=answering(late.sent)) == answer
    late.ack()

    never = Dialog(erin, focus)  # erin's ACK to her re-INVITE's 2xx never comes
    never.call_id = f"erin-{never.call_id}"
    assert never.invite(offer().to_text().encode()).status == 200
    never.ack()
    reanswer = never.invite(offer(audio_way="sendonly").to_text().encode())
    assert reanswer.status == 200
    assert erin.receive(lambda: None, match=answering(never.sent)) == reanswer
    bye = erin.receive(lambda: None, GIVE_UP, is_method("BYE"))
    assert bye.call_id == never.call_id
    erin.send(UdpSipPeer.response(bye, 200, "OK"), ("127.0.0.1", focus.port))
    wait_for(lambda: focus.roster("team") == [entity(dave)], "erin out of the room")

    # dave's 64*T1 ran out before erin's: his ACK stopped the 200s in time.
    assert not [m for m in drain(dave) if m.method == "BYE"]


def test_a_retransmitted_request_gets_the_same_answer(
    focus: Focus, peers: Callable[[str], UdpSipPeer]
) -> None:
    """Not a new transaction: an INVITE again (after its ACK) gets no new dialog,
    a BYE again the same 200."""
    dave = peers("dave")
    dialog = Dialog(dave, focus)
    answer = dialog.invite(offer().to_text().encode())
    assert answer.status == 200
    dialog.ack()
    dave.send(dialog.sent, ("127.0.0.1", focus.port))  # the INVITE again
    bye = dialog.request("BYE")
    dave.send(bye, ("127.0.0.1", focus.port))
    got = responses_until(dave, "BYE")  # the focus answers in order: the INVITE first
    assert [m for m in got if m.cseq[1] == "INVITE"] and all(m == answer for m in got[:-1])
    assert got[-1].status == 200
    assert dialog.send(bye) == got[-1]
    wait_for(lambda: focus.roster("team") == [], "dave out of the room")


@pytest.mark.parametrize(("status", "reason"), [(200, "OK"), (486, "Busy Here")])
def test_the_focus_acks_again_a_final_response_that_comes_again(
    focus: Focus, peers: Callable[[str], UdpSipPeer], status: int, reason: str
) -> None:
    """The focus calls erin for dave's REFER; her final response comes again, as
    when the focus's ACK is lost, and the same ACK must follow (a 2xx's in the
    dialog, section 13.2.2.4; a non-2xx's in its transaction, section 17.1.1.2)."""
    dave, erin = peers("dave"), peers("erin")
    dialog = Dialog(dave, focus)
    assert dialog.invite(offer().to_text().encode()).status == 200
    dialog.ack()
    assert dialog.send(dialog.request("REFER", (("Refer-To", f"<{erin.uri}>"),))).status == 202
    trying = dave.receive(lambda: None, match=is_method("NOTIFY"))
    dave.send(UdpSipPeer.response(trying, 200, "OK"), dave.last_from or ("127.0.0.1", focus.port))

    invite = erin.receive(lambda: None, match=is_method("INVITE"))
    final = UdpSipPeer.response(
        invite,
        status,
        reason,
        to_tag="erintag",
        headers=(("Contact", f"<{erin.uri}>"),),
        body=ANSWER if status == 200 else b"",
        content_type="application/sdp",
    )
    to_focus = erin.last_from
    assert to_focus is not None
    erin.send(final, to_focus)
    ack = erin.receive(lambda: None, match=is_method("ACK"))
    assert ack.cseq == (invite.cseq[0], "ACK")
    erin.send(final, to_focus)  # as if that ACK were lost
    assert erin.receive(lambda: None, match=is_method("ACK")) == ack
