"""What the chat plugin takes over MSRP from a Blink-style peer through
Kamailio: a megabyte in chunks, an interrupted chunk resumed, a file push
with its hash (an image shown until a press; a file over the limit refused
with 488), and hostile input, which closes that session only."""

from __future__ import annotations

import asyncio
import hashlib
import io

import pytest
from PIL import Image

from phone.msrp.message import Frame
from phone.msrp.sdp import FileSelector
from phone.msrp.uri import MsrpUri, parse_path
from phone.payloads import cpim, imdn
from phone.remote import RemotePhone
from phone.sip.sdp import find_message
from tests.chat.blink_peer import BlinkPeer, ChatCall
from tests.chat.test_chat_kamailio import peer, shows, start_bob, wait, with_alice
from tests.msrp.rawpeer import RawPeer, send_frame
from tests.peers.kamailio import Kamailio
from tests.phones import PhoneFactory, phones

__all__ = ["phones"]

pytestmark = pytest.mark.kamailio


async def raw_send(call: ChatCall, frame: Frame) -> Frame:
    assert call.msrp.connection is not None
    future = await call.msrp.connection.send(frame)
    assert future is not None
    return await future


def test_a_megabyte_in_chunks_and_an_interrupted_chunk(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        call = await alice.chat(kamailio.uri("bob"))
        big = "x" * 999_990 + " over"
        await alice.send_text(call, big, kamailio.uri("bob"))  # 64 kB chunks
        state = await wait(bob, shows(" over"), "the tail of a megabyte")
        assert len(state["messages"][-1]["text"]) == len(big)
        body = cpim.build(
            cpim.CpimMessage("text/plain", b"interrupted here | and resumed in a new chunk")
        )
        cut, total = body.index(b"|"), len(body)
        to, frm = call.msrp.to_path, (call.msrp.local_uri,)
        first = send_frame(to, frm, body[:cut], byte_range=f"1-{total}/{total}", flag="+",
                           content_type=cpim.CONTENT_TYPE, message_id="resume1")  # fmt: skip
        rest = send_frame(to, frm, body[cut:], byte_range=f"{cut + 1}-{total}/{total}",
                          content_type=cpim.CONTENT_TYPE, message_id="resume1")  # fmt: skip
        assert (await raw_send(call, first)).status == 200
        assert (await raw_send(call, rest)).status == 200
        state = await wait(bob, shows("and resumed in a new"), "the resumed message")
        assert state["messages"][-1]["text"] == "interrupted here | and resumed in a new chunk"
        # A text asking for a delivery notice (RFC 5438) gets one back on the session.
        asking = cpim.CpimMessage(
            "text/plain",
            b"Got it?",
            sender=cpim.Identity(alice.aor),
            recipients=(cpim.Identity(kamailio.uri("bob")),),
            namespaces={"imdn": imdn.CPIM_NS},
            headers=(
                cpim.Header("imdn.Message-ID", "m-42"),
                cpim.Header("imdn.Disposition-Notification", "positive-delivery"),
            ),
        )
        await call.msrp.send_message(cpim.CONTENT_TYPE, cpim.build(asking))
        async with asyncio.timeout(5):
            while not call.inbox.messages:
                call.inbox.arrived.clear()
                await call.inbox.arrived.wait()
        receipt = cpim.parse(call.inbox.messages[0][1])
        notice = imdn.parse(receipt.body)
        assert receipt.content_type == imdn.CONTENT_TYPE
        assert (notice.message_id, notice.status) == ("m-42", "delivered")

    with_alice(kamailio, phones, scenario)


def png(size: tuple[int, int]) -> bytes:
    image = Image.linear_gradient("L").resize(size)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_file_push_with_its_hash(kamailio: Kamailio, phones: PhoneFactory) -> None:
    data = png((320, 200))

    async def scenario(bob: RemotePhone, alice: BlinkPeer) -> None:
        selector = FileSelector("photo.png", "image/png", len(data), "sha-1",
                                hashlib.sha1(data).digest())  # fmt: skip
        call = await alice.chat(kamailio.uri("bob"), file=selector)
        found = find_message(call.answer)
        assert found is not None
        section = next(m for m in call.answer.media if m.kind == "message")
        assert "a=recvonly" in section.lines
        assert section.attribute("file-selector") == str(selector)
        await call.msrp.send_message("image/png", data)
        state = await wait(bob, lambda s: s["files"], "the file in the state")
        assert state["files"] == [
            {"from": kamailio.uri("alice"), "name": "photo.png", "size": len(data),
             "path": state["files"][0]["path"], "sha1_ok": True}
        ]  # fmt: skip
        with open(state["files"][0]["path"], "rb") as received:
            assert received.read() == data
        await wait(bob, shows("(image)"), "the image on the display")
        await asyncio.to_thread(bob.press, "end")
        state = await wait(bob, shows("File from Alice:"), "the note under the image")
        assert not state["calls"]  # the press only took the image away

        too_big = FileSelector("big.bin", "application/octet-stream", 300_000)
        refused = await alice.chat(kamailio.uri("bob"), file=too_big)
        assert refused.status == 488
        await wait(bob, shows("File refused:"), "the refusal on the screen")

    with_alice(kamailio, phones, scenario, max_file_bytes=200_000)


async def hostile(kamailio: Kamailio, bob: RemotePhone) -> None:
    alice, carol = (
        peer(kamailio),
        BlinkPeer("carol", kamailio.users["carol"], kamailio.domain, (kamailio_host(kamailio))),
    )
    await alice.start()
    await carol.start()
    try:
        good = await alice.chat(kamailio.uri("bob"))
        # Carol offers a=setup:active: the phone waits for her connections.
        bad = await carol.chat(kamailio.uri("bob"), setup="active", start=False)
        found = find_message(bad.answer)
        assert found is not None
        phone_path = parse_path(" ".join(found[1].path))
        host, port, _ = phone_path[-1].authority
        to, frm = phone_path, (bad.msrp.local_uri,)

        wrong = await RawPeer.connect(host, port)  # a To-Path that is no session: 481
        nowhere = MsrpUri(host, port, "nosuchsession")
        await wrong.write(send_frame((nowhere,), frm, b"hi").encode())
        assert (await wrong.next_frame()).status == 481

        huge = await RawPeer.connect(host, port)  # a declared size over the limit: 413
        await huge.write(send_frame(to, frm, b"hello", byte_range="1-5/99999999999").encode())
        assert (await huge.next_frame()).status == 413
        await huge.write(b"MSRP bad framing\r\n\r\n")  # then garbage: closed, and her session
        assert await huge.closed()
        bye = await carol.receive(lambda m: m.method == "BYE" and m.call_id == bad.call_id)
        carol.sip.send(carol.sip.response(bye, 200, "OK"), carol.sip.last_from or carol.proxy)

        slow = await RawPeer.connect(host, port)  # a head that never ends: closed
        await slow.write(b"MSRP slowloris SEND\r\nTo-Path: ")
        closed = False
        for _ in range(30):
            try:
                await slow.write(b"m")
            except ConnectionError:
                closed = True
                break
            if await slow.closed(timeout=1.0):
                closed = True
                break
        assert closed, "the slow head was not cut off"

        await alice.send_text(good, "Still here?", kamailio.uri("bob"))
        await wait(bob, shows("Still here?"), "alice's session goes on")
        for raw in (wrong, huge, slow):
            raw.close()
    finally:
        await alice.close()
        await carol.close()


def kamailio_host(kamailio: Kamailio) -> tuple[str, int]:
    return ("127.0.0.1", kamailio.sip_port)


def test_hostile_msrp_input_closes_that_session_only(
    kamailio: Kamailio, phones: PhoneFactory
) -> None:
    bob = start_bob(kamailio, phones)
    asyncio.run(hostile(kamailio, bob))
    assert bob.stop() == 0
