"""The demo focus's offers and answers across re-INVITEs (RFC 3264 section 8):
`FocusSdp` on its own, then the focus's edge cases against a raw UDP peer
(unknown dialog, unreadable SDP, a chat stream moved or dropped)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from phone.demo_focus import Focus
from phone.demo_focus_sdp import FocusSdp, direction
from phone.sip.message import SipMessage
from phone.sip.sdp import SessionDescription, SetupRole, find_message, message_section
from tests.sip.udp_peer import UdpSipPeer

OUR_CHAT = message_section(("msrp://127.0.0.1:2855/focus;tcp",), setup=SetupRole.PASSIVE)


def offer(
    formats: str = "9 0 101",
    audio_way: str = "sendrecv",
    session_way: str | None = None,
    path: str | None = "msrp://127.0.0.1:3000/peer;tcp",
) -> SessionDescription:
    """A phone's offer: audio (G722, PCMU, telephone-event), a video line, chat."""
    lines = ["v=0", "o=peer 7 7 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
    lines += [f"a={session_way}"] if session_way else []
    lines += [
        f"m=audio 4000 RTP/AVP {formats}",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
    ]
    lines += [f"a={audio_way}"] if session_way is None else []
    lines += ["m=video 4002 RTP/AVP 96", "a=rtpmap:96 H264/90000"]
    if path is None:
        lines += ["m=message 0 TCP/MSRP *"]
    else:
        lines += ["m=message 3000 TCP/MSRP *", f"a=path:{path}"]
        lines += ["a=accept-types:message/cpim", "a=setup:active"]
    return SessionDescription.parse("\r\n".join(lines) + "\r\n")


def parsed(body: bytes) -> SessionDescription:
    return SessionDescription.parse(body.decode())


def version(description: SessionDescription) -> int:
    (line,) = [line for line in description.session if line.startswith("o=")]
    return int(line.split()[2])


def test_the_answer_takes_the_audio_and_chat_and_refuses_the_rest() -> None:
    answer = parsed(FocusSdp("127.0.0.1", 5004).answer(offer(), OUR_CHAT))
    audio, video, chat = answer.media
    assert (audio.port, audio.formats) == (5004, ("9",))
    assert audio.lines == ("a=rtpmap:9 G722/8000", "a=sendrecv")
    assert (video.kind, video.port) == ("video", 0)
    assert chat == OUR_CHAT


@pytest.mark.parametrize(
    ("audio_way", "session_way", "answered"),
    [
        ("sendonly", None, "recvonly"),
        ("inactive", None, "inactive"),
        ("recvonly", None, "sendonly"),
        ("sendrecv", "sendonly", "recvonly"),  # a session-level attribute (RFC 4566 section 6)
    ],
)
def test_hold_is_answered_in_the_mirror_direction(
    audio_way: str, session_way: str | None, answered: str
) -> None:
    sdp = FocusSdp("127.0.0.1", 5004)
    sdp.answer(offer(), OUR_CHAT)
    held = parsed(sdp.answer(offer(audio_way=audio_way, session_way=session_way), OUR_CHAT))
    assert direction(held, held.media[0]) == answered
    assert sdp.offered_direction == (session_way or audio_way)


def test_a_re_offer_keeps_the_codec_while_offered_and_the_version_counts_changes() -> None:
    sdp = FocusSdp("127.0.0.1", 5004)
    first = parsed(sdp.answer(offer(), OUR_CHAT))
    same = parsed(sdp.answer(offer(formats="0 9 101"), OUR_CHAT))  # G722 still offered
    assert same.media[0].formats == ("9",)
    assert same.to_text() == first.to_text()  # nothing changed: same version too
    moved = parsed(sdp.answer(offer(formats="0 101"), OUR_CHAT))  # G722 gone
    assert moved.media[0].lines == ("a=rtpmap:0 PCMU/8000", "a=sendrecv")
    assert version(moved) == version(first) + 1
    assert moved.session[1].split()[1] == first.session[1].split()[1]  # the same session id


def test_our_offer_repeats_the_m_lines_we_last_said() -> None:
    sdp = FocusSdp("127.0.0.1", 5004)
    held = parsed(sdp.answer(offer(audio_way="sendonly"), OUR_CHAT))
    again = parsed(sdp.offer(OUR_CHAT))
    assert [(m.kind, m.port) for m in again.media] == [(m.kind, m.port) for m in held.media]
    assert direction(again, again.media[0]) == "sendrecv"
    assert again.media[2] == OUR_CHAT
    without_chat = parsed(sdp.offer(None))
    assert (without_chat.media[2].kind, without_chat.media[2].port) == ("message", 0)


def test_a_first_offer_has_audio_and_the_chat() -> None:
    first = parsed(FocusSdp("127.0.0.1", 5004).offer(OUR_CHAT))
    assert [m.kind for m in first.media] == ["audio", "message"]
    assert first.media[0].formats == ("0",)


# -- the focus against a raw peer ------------------------------------------------


@pytest.fixture
def focus() -> Iterator[Focus]:
    focus = Focus(None, {"team": "Team meeting"}).start()
    yield focus
    focus.stop()


@pytest.fixture
def peer() -> Iterator[UdpSipPeer]:
    peer = UdpSipPeer("dave")
    yield peer
    peer.close()


class Dialog:
    """dave's call into the room, one INVITE at a time."""

    def __init__(self, peer: UdpSipPeer, focus: Focus) -> None:
        self.peer, self.focus = peer, focus
        self.room = focus.room_uri("team")
        self.call_id = f"dave-{secrets.token_hex(4)}"
        self.to = f"<{self.room}>"
        self.cseq = 0
        self.sent = b""  # the last request, to send again as a retransmission

    def invite(self, body: bytes, call_id: str | None = None) -> SipMessage:
        """INVITE (a re-INVITE once answered 200) and its final response, not ACKed."""
        self.cseq += 1
        response = self.send(
            self.peer.request(
                "INVITE",
                self.room,
                call_id=call_id or self.call_id,
                from_tag="davetag",
                to=self.to,
                cseq=self.cseq,
                body=body,
                content_type="application/sdp",
            )
        )
        if response.status == 200:
            self.to = response.require("to")
        return response

    def send(self, request: bytes) -> SipMessage:
        """Send `request` to the focus; its response (the first with its CSeq)."""
        self.sent = request
        self.peer.send(request, ("127.0.0.1", self.focus.port))
        return self.peer.receive(lambda: None, match=answering(request))

    def ack(self) -> None:
        """ACK the last INVITE's 2xx."""
        ack = self.peer.request(
            "ACK", self.room, call_id=self.call_id, from_tag="davetag", to=self.to, cseq=self.cseq
        )
        self.peer.send(ack, ("127.0.0.1", self.focus.port))

    def request(self, method: str, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
        """The next request in the call (a BYE, a REFER)."""
        self.cseq += 1
        return self.peer.request(
            method,
            self.room,
            call_id=self.call_id,
            from_tag="davetag",
            to=self.to,
            cseq=self.cseq,
            headers=headers,
        )


def answering(request: bytes) -> Callable[[SipMessage], bool]:
    """Matches a response to `request` (a 2xx the focus sends again to an earlier
    INVITE may come first)."""
    cseq = SipMessage.parse(request).cseq
    return lambda message: message.status is not None and message.cseq == cseq


def chat_path(response: SipMessage) -> tuple[str, ...] | None:
    found = find_message(parsed(response.body))
    return None if found is None else found[1].path


def test_re_invites_outside_a_call_or_unreadable_are_refused(
    focus: Focus, peer: UdpSipPeer
) -> None:
    dialog = Dialog(peer, focus)
    first = dialog.invite(offer().to_text().encode())
    assert first.status == 200
    assert dialog.invite(b"not SDP").status == 488
    assert focus.roster("team") == [peer.uri.rpartition(":")[0]]
    again = dialog.invite(offer().to_text().encode())
    assert (again.status, again.body) == (200, first.body)  # the session as it was
    dialog.to = f"<{dialog.room}>;tag=nosuchtag"
    assert dialog.invite(offer().to_text().encode(), call_id="no-such-call").status == 481


def test_a_moved_chat_stream_is_a_new_session_and_a_dropped_one_ends(
    focus: Focus, peer: UdpSipPeer
) -> None:
    """RFC 4975 section 8.4: the same path goes on, a new path is a new session."""
    dialog = Dialog(peer, focus)
    first = chat_path(dialog.invite(offer().to_text().encode()))
    assert first is not None
    moved = chat_path(
        dialog.invite(offer(path="msrp://127.0.0.1:3001/moved;tcp").to_text().encode())
    )
    assert moved is not None and moved != first
    assert chat_path(dialog.invite(offer(path=None).to_text().encode())) is None
