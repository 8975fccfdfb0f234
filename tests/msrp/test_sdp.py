"""File transfer (RFC 5547), max-size and fingerprint attributes of m=message."""

from __future__ import annotations

import pytest

from phone.msrp.error import MsrpError
from phone.msrp.sdp import (
    FileSelector,
    FileTransfer,
    file_lines,
    file_transfer,
    fingerprint,
    fingerprint_line,
    max_size,
)
from phone.msrp.tls import Fingerprint
from phone.sip.sdp import SessionDescription, find_message

# RFC 5547 section 10.1's push offer, as Blink writes it (with a fingerprint).
OFFER = """v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s=-
c=IN IP4 host.atlanta.example.com
t=0 0
a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB
m=message 7654 TCP/MSRP *
i=This is my latest picture
a=sendonly
a=accept-types:message/cpim
a=accept-wrapped-types:*
a=path:msrp://atlanta.example.com:7654/jshA7we;tcp
a=file-selector:name:"My cool picture.jpg" type:image/jpeg size:32349 hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E
a=file-transfer-id:vBnG916bdberum2fFEABR1FR3ExZMUrd
a=file-disposition:render
a=file-date:creation:"Mon, 15 May 2006 15:01:31 +0300"
a=file-range:1-*
a=max-size:40000
"""


def test_rfc5547_push_offer():
    sdp = SessionDescription.parse(OFFER)
    index, media = find_message(sdp)  # phone.sip.sdp reads the message line itself
    assert media.path[0].endswith("jshA7we;tcp")
    section = sdp.media[index]
    transfer = file_transfer(section)
    assert transfer == FileTransfer(
        selector=FileSelector(
            name="My cool picture.jpg",
            content_type="image/jpeg",
            size=32349,
            hash_algorithm="sha-1",
            digest=bytes.fromhex("72245FE8653DDAF371362F86D471913EE4A2CE2E"),
        ),
        transfer_id="vBnG916bdberum2fFEABR1FR3ExZMUrd",
        disposition="render",
        byte_range=(1, None),
        description="This is my latest picture",
    )
    assert max_size(section) == 40000
    assert fingerprint(sdp, section) == Fingerprint.parse(
        "sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB"
    )
    assert fingerprint_line(fingerprint(sdp, section)) == (
        "a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB"
    )
    answer_lines = file_lines(transfer)
    assert "a=file-transfer-id:vBnG916bdberum2fFEABR1FR3ExZMUrd" in answer_lines
    selector_line = next(line for line in answer_lines if line.startswith("a=file-selector:"))
    assert FileSelector.parse(selector_line.split(":", 1)[1]) == transfer.selector


def test_names_with_quotes_and_percent_survive():
    selector = FileSelector(name='50% "off".txt', size=3)
    assert str(selector) == 'name:"50%25 %22off%22.txt" size:3'
    assert FileSelector.parse(str(selector)) == selector


def test_chat_line_has_no_file():
    sdp = SessionDescription.parse(OFFER.replace("a=file-selector", "a=x-file-selector"))
    assert file_transfer(sdp.media[0]) is None
    assert (
        fingerprint(SessionDescription.parse("v=0\r\nm=message 9 TCP/MSRP *\r\n"), sdp.media[0])
        is None
    )


@pytest.mark.parametrize(
    "selector", ['name:"unterminated', "size:-1", "hash:sha-1:ZZ", "colour:blue", "size:1e9"]
)
def test_bad_selectors(selector):
    with pytest.raises(MsrpError):
        FileSelector.parse(selector)


def test_bad_range_and_max_size():
    sdp = SessionDescription.parse(
        OFFER.replace("a=file-range:1-*", "a=file-range:0-9").replace(
            "max-size:40000", "max-size:big"
        )
    )
    with pytest.raises(MsrpError):
        file_transfer(sdp.media[0])
    with pytest.raises(MsrpError):
        max_size(sdp.media[0])
