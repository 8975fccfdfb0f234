"""Well-framed but hostile requests (SEND, REPORT, unknown methods) into a live
session: whatever their headers say, no error escapes, each is answered as
RFC 4975 says (REPORTs never), and the session goes on."""

from __future__ import annotations

import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone.msrp.endpoint import MsrpEndpoint
from tests.msrp.rawpeer import RawPeer, send_frame
from tests.msrp.test_session import Inbox, run

RANGES = ["1-*/*", "1-0/0", "5-3/10", "2-4/4", "1-5/5", "3-*/2", "99999999999999999-1/2",
          "1-999999999999/999999999999", "x", "6-10/10", "1-3/*"]  # fmt: skip
sends = st.fixed_dictionaries(
    {
        "body": st.binary(max_size=12),
        "message_id": st.sampled_from(["msg00001", "msg00002", "bad id", "m"]),
        "byte_range": st.sampled_from(RANGES),
        "content_type": st.sampled_from(["text/plain", "image/png", None]),
        "flag": st.sampled_from(["$", "+", "#"]),
        "failure": st.sampled_from(["yes", "no", "partial", "bogus"]),
        "success": st.sampled_from(["yes", "no", "partial", "bogus"]),
        "method": st.sampled_from(["SEND", "SEND", "REPORT", "NICKNAME"]),
        "status": st.sampled_from(["000 200 OK", "000 481 Gone", "200", "000 999"]),
    }
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(sends, min_size=1, max_size=6))
def test_hostile_sends(frames):
    async def scenario() -> None:
        bob = MsrpEndpoint()
        await bob.listen()
        inbox = Inbox()
        alice = bob.new_uri(port=9)
        b = bob.session(
            bob.new_uri(),
            (alice,),
            on_message=inbox,
            accept_types=("text/*",),
            max_message_bytes=64,
        )
        peer = await RawPeer.connect("127.0.0.1", bob.port)
        try:
            for options in frames:
                method = options.pop("method")
                headers = (
                    ("Failure-Report", options.pop("failure")),
                    ("Success-Report", options.pop("success")),
                    ("Status", options.pop("status")),
                )
                frame = send_frame(b.local_path, (alice,), headers=headers, **options)
                frame.method = method
                data = (
                    frame.encode()
                    if frame.content_type
                    else frame.head() + b"\r\n" + frame.body + b"\r\n" + frame.end_line()
                )
                await peer.write(data)
            final = send_frame(b.local_path, (alice,), b"end", message_id="final001")
            await peer.write(final.encode())
            while (answer := await peer.next_frame()).tid != final.tid:
                assert answer.status is not None
            assert answer.status == 200
            while (await inbox.get()).message_id != "final001":
                pass
            assert not b.closed
        finally:
            peer.close()
            await bob.close()

    logger = logging.getLogger("phone.msrp")
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        run(scenario())
    finally:
        logger.removeHandler(handler)
    assert errors == []
