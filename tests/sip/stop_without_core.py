"""A SIP stack that stops before a core took it (phone.cli: the board or the
control interface failed after the first REGISTER), with a call coming in.

Run as `python -m tests.sip.stop_without_core`, a process of its own (pjsua is
a singleton). The stack starts in direct mode and is never attached; a
caller's INVITE waits in its socket until `SipStack.stop` hands pjsip to the
loop and polls it. Printed as one JSON object: the caller's final response
(status, Retry-After). Before the stop refused requests, the INVITE went on
to pjsua and the account's `onIncomingCall` with no core to tell (its
AssertionError printed by SWIG), and pjsua2 hung the call up with 500.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import secrets

from phone.config import CallsConfig
from phone.sip.endpoint import SipStack
from tests.peers.ports import free_port
from tests.sip.stack import direct_account
from tests.sip.udp_peer import UdpSipPeer

OFFER = (
    b"v=0\r\no=carol 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4020 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


async def main() -> dict[str, object]:
    account = direct_account("alice", free_port())
    stack = SipStack(account, CallsConfig(), None)
    stack.start()
    caller = UdpSipPeer("carol")
    try:
        invite = caller.request(
            "INVITE",
            account.uri,
            call_id=secrets.token_hex(8),
            from_tag="caroltag",
            to=f"<{account.uri}>",
            cseq=1,
            body=OFFER,
            content_type="application/sdp",
        )
        caller.send(invite, ("127.0.0.1", account.port))
        await stack.stop()
        final = caller.receive(lambda: None, match=lambda m: (m.status or 0) >= 200)
    finally:
        caller.close()
    return {"status": final.status, "retry_after": final.header("retry-after")}


if __name__ == "__main__":
    faulthandler.enable()
    print(json.dumps(asyncio.run(main())), flush=True)
