"""Pure SDP work for MSRP message sessions: offer, answer, negotiation, trimming."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phone.sip.sdp import (
    MessageSession,
    SdpError,
    SessionDescription,
    SetupRole,
    answer_role,
    answer_section,
    find_message,
    local_msrp_path,
    message_section,
    offered_session,
    replace_section,
    trim,
)

BLINK_CHAT_OFFER = (
    "v=0\r\no=- 3912 3912 IN IP4 127.0.0.1\r\ns=Blink\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=message 2855 TCP/TLS/MSRP *\r\n"
    "a=path:msrps://127.0.0.1:2855/9di4ea;tcp\r\n"
    "a=accept-types:message/cpim text/plain\r\n"
    "a=accept-wrapped-types:*\r\n"
    "a=setup:actpass\r\n"
)

PJSUA_AUDIO_TWICE = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=pjmedia\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 9 0 8 101\r\nc=IN IP4 127.0.0.1\r\n"
    "a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
    "m=audio 4002 RTP/AVP 9 0 8 101\r\nc=IN IP4 127.0.0.1\r\n"
    "a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
)


def test_answer_chat_only_offer() -> None:
    offer = SessionDescription.parse(BLINK_CHAT_OFFER)
    found = find_message(offer)
    assert found is not None
    index, media = found
    assert index == 0 and media.protocol == "TCP/TLS/MSRP" and media.setup is SetupRole.ACTPASS
    assert media.path == ("msrps://127.0.0.1:2855/9di4ea;tcp",)
    path = (local_msrp_path("127.0.0.1", 40000, media.protocol),)
    section, session = answer_section(media, path)
    assert section.port == 40000 and section.protocol == "TCP/TLS/MSRP"
    assert section.attribute("setup") == "active" and section.attribute("path") == path[0]
    assert session == MessageSession(
        path, media.path, ("message/cpim", "text/plain"), ("*",), SetupRole.ACTIVE
    )
    assert session.we_connect
    answer = replace_section(offer, index, section).to_text()
    assert "m=message 40000 TCP/TLS/MSRP *\r\n" in answer and answer.startswith("v=0\r\n")


def test_offer_audio_plus_message_then_read_answer() -> None:
    sdp = SessionDescription.parse(PJSUA_AUDIO_TWICE)
    ours = message_section(("msrp://127.0.0.1:4100/abc;tcp",), setup=SetupRole.ACTPASS)
    offer = trim(replace_section(sdp, 1, ours))
    text = offer.to_text()
    assert text.count("m=audio") == 1 and "m=message 4100 TCP/MSRP *" in text
    assert "a=accept-types:message/cpim text/plain application/im-iscomposing+xml" in text
    answer_text = BLINK_CHAT_OFFER.replace("a=setup:actpass", "a=setup:passive").replace(
        "TCP/TLS/MSRP", "TCP/MSRP"
    )
    found = find_message(SessionDescription.parse(answer_text))
    assert found is not None
    session = offered_session(ours, found[1])
    assert session.local_path == ("msrp://127.0.0.1:4100/abc;tcp",)
    assert session.remote_path == ("msrps://127.0.0.1:2855/9di4ea;tcp",)
    assert session.local_setup is SetupRole.ACTIVE


def test_roles() -> None:
    assert answer_role(SetupRole.ACTPASS) is SetupRole.ACTIVE
    assert answer_role(SetupRole.PASSIVE) is SetupRole.ACTIVE
    assert answer_role(SetupRole.ACTIVE) is SetupRole.PASSIVE
    assert answer_role(None) is SetupRole.PASSIVE
    # A kept session's live role stands where the offer leaves the choice, only there.
    assert answer_role(SetupRole.ACTPASS, SetupRole.PASSIVE) is SetupRole.PASSIVE
    assert answer_role(SetupRole.PASSIVE, SetupRole.PASSIVE) is SetupRole.ACTIVE
    ours = message_section(("msrp://h:1/a;tcp",), setup=SetupRole.ACTPASS)
    found = find_message(SessionDescription.parse(BLINK_CHAT_OFFER.replace("actpass", "active")))
    assert found is not None
    assert offered_session(ours, found[1]).local_setup is SetupRole.PASSIVE


def test_trim_keeps_one_codec_and_telephone_event() -> None:
    sdp = SessionDescription.parse(PJSUA_AUDIO_TWICE)
    trimmed = trim(sdp, limit=len(sdp.to_text()) - 60)
    assert len(trimmed.to_text()) <= len(sdp.to_text()) - 60
    assert all("101" in s.formats for s in trimmed.media)
    with pytest.raises(SdpError):
        trim(sdp, limit=100)


def test_disabled_message_line_is_not_found() -> None:
    sdp = SessionDescription.parse(BLINK_CHAT_OFFER.replace("m=message 2855", "m=message 0"))
    assert find_message(sdp) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "m=message 1 TCP/MSRP *\r\n",
        "v=0\r\nbogus\r\n",
        "v=0\r\nm=message x TCP/MSRP *\r\n",
        "v=0\r\nm=message 99999 TCP/MSRP *\r\n",
        "v=0\r\nm=message 1\r\n",
        BLINK_CHAT_OFFER.replace("TCP/TLS/MSRP", "UDP/MSRP"),
        BLINK_CHAT_OFFER.replace("a=path:msrps", "a=path:http"),
        BLINK_CHAT_OFFER.replace("a=setup:actpass", "a=setup:sideways"),
    ],
)
def test_malformed_sdp_raises_sdp_error(text: str) -> None:
    with pytest.raises(SdpError):
        find_message(SessionDescription.parse(text))


def test_offer_without_accept_types_cannot_be_answered() -> None:
    found = find_message(
        SessionDescription.parse(
            BLINK_CHAT_OFFER.replace("a=accept-types:message/cpim text/plain\r\n", "")
        )
    )
    assert found is not None
    with pytest.raises(SdpError):
        answer_section(found[1], ("msrp://127.0.0.1:1/x;tcp",))


@given(st.text(max_size=400))
def test_any_text_parses_or_sdp_error(text: str) -> None:
    with contextlib.suppress(SdpError):
        find_message(SessionDescription.parse(text))
