"""The demo focus over UDP when a datagram is lost (RFC 3261 sections 13.2.2.4,
13.3.1.4 and 17), against raw UDP peers that drop an ACK or a request on
purpose: its 2xx goes again until the ACK and a 2xx never ACKed ends the call
with a BYE; its ACK goes again when a final response to its INVITE comes again;
a retransmitted request gets the same response; its own requests go again
until answered, and time out after 64*T1. Then CANCEL: the focus's own, when
its INVITE rings too long (sections 9.1 and 13.2.1), and the peers' (section
9.2). Last, `stop()` ends the focus's tasks. T1 and T2 are shortened so 64*T1
is 6.4 s, and the ring limit to 1 s where a test wants it."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from phone.demo_focus import Focus
from phone.demo_focus_resend import Timers
from phone.payloads import sipfrag
from phone.sip.message import SipMessage, header_params
from tests.conference.test_focus_sdp import Dialog, answering, offer
from tests.sip.udp_peer import UdpSipPeer

TIMERS = Timers(t1=0.1, t2=0.4)  # the ring limit stays 30 s: longer than any test
SHORT_RING = replace(TIMERS, ring=1.0)
GIVE_UP = TIMERS.lifetime + 5  # how long to wait for what comes after 64*T1
ANSWER = (
    b"v=0\r\no=erin 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4010 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


@pytest.fixture
def focus(request: pytest.FixtureRequest) -> Iterator[Focus]:
    """The focus, with TIMERS or those a test names by `indirect` parametrization."""
    focus = Focus(None, {"team": "Team meeting"}, timers=getattr(request, "param", TIMERS))
    yield focus.start()
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


def in_room(peer: UdpSipPeer, focus: Focus) -> Dialog:
    """`peer`'s call into the room, answered and ACKed."""
    dialog = Dialog(peer, focus)
    assert dialog.invite(offer().to_text().encode()).status == 200
    dialog.ack()
    return dialog


def erins_answer(invite: SipMessage, erin: UdpSipPeer, status: int, reason: str) -> bytes:
    """erin's final response to the focus's INVITE: a 2xx with her SDP answer."""
    return UdpSipPeer.response(
        invite,
        status,
        reason,
        to_tag="erintag",
        headers=(("Contact", f"<{erin.uri}>"),),
        body=ANSWER if status == 200 else b"",
        content_type="application/sdp",
    )


def refer(dialog: Dialog, refer_to: str) -> None:
    """dave asks the focus to INVITE or BYE `refer_to` (RFC 4579 section 5); the
    focus says 100 Trying before it INVITEs."""
    assert dialog.send(dialog.request("REFER", (("Refer-To", refer_to),))).status == 202
    if "method=BYE" not in refer_to:
        progress_until(dialog.peer, 100)


def progress_until(peer: UdpSipPeer, status: int) -> list[SipMessage]:
    """The requests that come to `peer` until the REFER's NOTIFY whose sipfrag
    says `status`; its NOTIFYs are answered 200."""
    got: list[SipMessage] = []

    def last(message: SipMessage) -> bool:
        if message.method is None:
            return False
        got.append(message)
        if message.method != "NOTIFY":
            return False
        peer.send(UdpSipPeer.response(message, 200, "OK"), peer.last_from or ("", 0))
        return sipfrag.parse(message.body).status == status

    peer.receive(lambda: None, GIVE_UP, last)
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
    dialog = in_room(dave, focus)
    refer(dialog, f"<{erin.uri}>")

    invite = erin.receive(lambda: None, match=is_method("INVITE"))
    final = erins_answer(invite, erin, status, reason)
    to_focus = erin.last_from
    assert to_focus is not None
    erin.send(final, to_focus)
    ack = erin.receive(lambda: None, match=is_method("ACK"))
    assert ack.cseq == (invite.cseq[0], "ACK")
    erin.send(final, to_focus)  # as if that ACK were lost
    assert erin.receive(lambda: None, match=is_method("ACK")) == ack


def test_a_lost_invite_goes_again_until_it_rings_then_waits_for_the_answer(
    focus: Focus, peers: Callable[[str], UdpSipPeer]
) -> None:
    """Timer A (section 17.1.1.2): the focus's INVITE for dave's REFER is lost
    once; a provisional response ends its sending and Timer B, and the call
    goes on when erin answers after 64*T1."""
    dave, erin = peers("dave"), peers("erin")
    dialog = in_room(dave, focus)
    refer(dialog, f"<{erin.uri}>")
    invite = erin.receive(lambda: None, match=is_method("INVITE"))  # lost
    assert erin.receive(lambda: None, match=is_method("INVITE")) == invite
    to_focus = erin.last_from
    assert to_focus is not None
    erin.send(UdpSipPeer.response(invite, 180, "Ringing", to_tag="erintag"), to_focus)
    progress_until(dave, 180)
    drain(erin)  # what was on its way before the 180
    time.sleep(TIMERS.lifetime + 1)
    assert not drain(erin)
    assert not drain(dave)  # no 408: Timer B stopped at the 180
    erin.send(erins_answer(invite, erin, 200, "OK"), to_focus)
    assert erin.receive(lambda: None, match=is_method("ACK")).cseq == (invite.cseq[0], "ACK")
    progress_until(dave, 200)
    wait_for(lambda: focus.roster("team") == [entity(dave), entity(erin)], "erin in the room")


def test_a_lost_bye_and_notify_go_again_until_answered(
    focus: Focus, peers: Callable[[str], UdpSipPeer]
) -> None:
    """Timer E (section 17.1.2.2): dave REFERs his own removal; the focus's BYE
    is lost once, then the NOTIFY that reports it."""
    dave = peers("dave")
    dialog = in_room(dave, focus)
    refer(dialog, f"<{dave.uri};method=BYE>")
    bye = dave.receive(lambda: None, match=is_method("BYE"))  # lost
    assert dave.receive(lambda: None, match=is_method("BYE")) == bye
    dave.send(UdpSipPeer.response(bye, 200, "OK"), dave.last_from or ("", 0))
    notify = dave.receive(lambda: None, match=is_method("NOTIFY"))  # lost
    assert sipfrag.parse(notify.body).status == 200
    assert dave.receive(lambda: None, match=is_method("NOTIFY")) == notify
    dave.send(UdpSipPeer.response(notify, 200, "OK"), dave.last_from or ("", 0))
    wait_for(lambda: focus.roster("team") == [], "dave out of the room")
    time.sleep(4 * TIMERS.t2)  # longer than Timer E's longest wait
    assert not drain(dave)


@pytest.mark.parametrize("method", ["INVITE", "BYE"])
def test_a_request_never_answered_goes_again_then_times_out(
    focus: Focus, peers: Callable[[str], UdpSipPeer], method: str
) -> None:
    """Timers A and B for the INVITE the focus sends erin, E and F for the BYE
    it sends dave: the same request again and again, then after 64*T1 the
    REFER's outcome is 408 (RFC 3261 section 8.1.3.1)."""
    dave, erin = peers("dave"), peers("erin")
    dialog = in_room(dave, focus)
    refer(dialog, f"<{erin.uri}>" if method == "INVITE" else f"<{dave.uri};method=BYE>")
    came = progress_until(dave, 408) + drain(erin)
    sent = [m for m in came if m.method == method]
    assert len(sent) >= 2 and all(m == sent[0] for m in sent), came
    time.sleep(4 * TIMERS.t2)
    assert not [m for m in drain(dave) + drain(erin) if m.method == method]


def test_cancel_gets_200_for_a_request_answered_and_481_for_none(
    focus: Focus, peers: Callable[[str], UdpSipPeer]
) -> None:
    """RFC 3261 section 9.2: the focus answers an INVITE at once, so a CANCEL of
    it comes after the final response: 200, and the call goes on. A CANCEL that
    matches no request the focus answered (another branch) gets 481."""
    dave = peers("dave")
    dialog = Dialog(dave, focus)
    assert dialog.invite(offer().to_text().encode()).status == 200
    branch = header_params(SipMessage.parse(dialog.sent).require("via"))[1]["branch"]

    def cancel(call_id: str, branch: str) -> int | None:
        request = dave.request(
            "CANCEL",
            dialog.room,
            call_id=call_id,
            from_tag="davetag",
            to=f"<{dialog.room}>",
            cseq=dialog.cseq,
            branch=branch,
        )
        return dialog.send(request).status

    assert cancel(dialog.call_id, branch) == 200
    dialog.ack()
    assert cancel(dialog.call_id, branch + "x") == 481
    assert cancel("no-such-call", branch + "y") == 481
    assert focus.roster("team") == [entity(dave)]


def erin_rings(dave: UdpSipPeer, erin: UdpSipPeer, focus: Focus) -> SipMessage:
    """dave, in the room, REFERs erin; the focus's INVITE rings at erin (180)."""
    refer(in_room(dave, focus), f"<{erin.uri}>")
    invite = erin.receive(lambda: None, match=is_method("INVITE"))
    erin.send(
        UdpSipPeer.response(invite, 180, "Ringing", to_tag="erintag"), erin.last_from or ("", 0)
    )
    progress_until(dave, 180)
    return invite


def top_branch(message: SipMessage) -> str:
    return header_params(message.require("via"))[1]["branch"]


@pytest.mark.parametrize("focus", [SHORT_RING], indirect=True)
def test_a_dial_out_that_rings_too_long_is_cancelled_and_reports_487(
    focus: Focus, peers: Callable[[str], UdpSipPeer]
) -> None:
    """Sections 9.1, 13.2.1 and 17.1.1.3: the INVITE says how long it may ring
    (Expires); then the CANCEL goes (again when lost), with the INVITE's
    Request-URI, Call-ID, From, To, CSeq number and top Via; erin's 487 is
    ACKed in the INVITE's transaction and dave's REFER ends with 487."""
    dave, erin = peers("dave"), peers("erin")
    invite = erin_rings(dave, erin, focus)
    assert invite.header("expires") == "1"
    cancel = erin.receive(lambda: None, match=is_method("CANCEL"))  # lost
    assert erin.receive(lambda: None, match=is_method("CANCEL")) == cancel
    assert cancel.request_uri == invite.request_uri
    assert cancel.cseq == (invite.cseq[0], "CANCEL")
    for name in ("via", "call-id", "from", "to"):
        assert cancel.header_values(name) == invite.header_values(name), name
    assert not cancel.body
    to_focus = erin.last_from or ("", 0)
    erin.send(UdpSipPeer.response(cancel, 200, "OK", to_tag="erintag"), to_focus)
    erin.send(erins_answer(invite, erin, 487, "Request Terminated"), to_focus)
    ack = erin.receive(lambda: None, match=is_method("ACK"))
    assert ack.cseq == (invite.cseq[0], "ACK")
    assert top_branch(ack) == top_branch(invite)
    assert ack.to.tag == "erintag"
    progress_until(dave, 487)
    time.sleep(4 * TIMERS.t2)  # the CANCEL was answered: it goes no more
    assert not [m for m in drain(erin) if m.method == "CANCEL"]
    assert focus.roster("team") == [entity(dave)]


@pytest.mark.parametrize("focus", [SHORT_RING], indirect=True)
def test_no_cancel_before_it_rings_and_an_answer_crossing_the_cancel_is_kept(
    focus: Focus, peers: Callable[[str], UdpSipPeer]
) -> None:
    """Section 9.1: the ring limit passes while erin has not responded: no
    CANCEL until her 180. Her 200 then crosses the CANCEL: the focus ACKs it
    and keeps the call (she answered: the REFER's outcome), with no BYE."""
    dave, erin = peers("dave"), peers("erin")
    refer(in_room(dave, focus), f"<{erin.uri}>")
    invite = erin.receive(lambda: None, match=is_method("INVITE"))
    time.sleep(SHORT_RING.ring + 1)
    assert {m.method for m in drain(erin)} == {"INVITE"}  # Timer A only
    to_focus = erin.last_from or ("", 0)
    erin.send(UdpSipPeer.response(invite, 180, "Ringing", to_tag="erintag"), to_focus)
    progress_until(dave, 180)
    cancel = erin.receive(lambda: None, match=is_method("CANCEL"))
    erin.send(erins_answer(invite, erin, 200, "OK"), to_focus)  # sent before the CANCEL came
    erin.send(UdpSipPeer.response(cancel, 200, "OK", to_tag="erintag"), to_focus)
    ack = erin.receive(lambda: None, match=is_method("ACK"))
    assert ack.cseq == (invite.cseq[0], "ACK")
    assert top_branch(ack) != top_branch(invite)  # a 2xx's ACK is a transaction of its own
    progress_until(dave, 200)
    wait_for(lambda: focus.roster("team") == [entity(dave), entity(erin)], "erin in the room")
    time.sleep(4 * TIMERS.t2)
    assert not [m for m in drain(erin) if m.method in ("BYE", "CANCEL")]


@pytest.mark.parametrize("focus", [SHORT_RING], indirect=True)
def test_a_cancel_never_answered_ends_the_dial_out_with_408(
    focus: Focus, peers: Callable[[str], UdpSipPeer]
) -> None:
    """Section 9.1: erin rings and answers neither the CANCEL nor the INVITE; the
    CANCEL goes again (Timer E), and 64*T1 after it the INVITE is over: 408."""
    dave, erin = peers("dave"), peers("erin")
    erin_rings(dave, erin, focus)
    progress_until(dave, 408)
    cancels = [m for m in drain(erin) if m.method == "CANCEL"]
    assert len(cancels) >= 2 and all(m == cancels[0] for m in cancels)
    assert focus.roster("team") == [entity(dave)]


def test_stop_ends_a_ringing_dial_out_without_a_task_left_pending(
    peers: Callable[[str], UdpSipPeer], caplog: pytest.LogCaptureFixture
) -> None:
    """`stop()` while the focus's INVITE rings at erin: its task is ended before
    the loop stops, so asyncio never finds it destroyed pending."""
    focus = Focus(None, {"team": "Team meeting"}, timers=TIMERS).start()
    erin_rings(peers("dave"), peers("erin"), focus)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        focus.stop()
        del focus
        gc.collect()
    assert not [r for r in caplog.records if "destroyed but it is pending" in r.getMessage()]
