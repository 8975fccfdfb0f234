"""Out-of-dialog requests we send once and wait for: MESSAGE (RFC 3428), REFER (RFC 3515).

pjsua2 sends MESSAGE only through a `Buddy` and REFER only inside a call, so
these go out like PUBLISH does in `phone.sip.publication`: an `OutgoingRequest`
with a fresh Call-ID and From tag (RFC 3261 section 8.1.1), the account's
Route, sent by `RawSip.send` in a UAC transaction. A 401/407 is answered once
with the account's digest credentials, on a new CSeq in the same Call-ID
(section 22.2). The caller gets the final response, or None when there was
none (timeout, transport error).

A REFER outside a dialog creates an implicit `refer` subscription (RFC 3515
section 2.4.4); its NOTIFYs (message/sipfrag progress) are not followed here
and get 481, which ends that subscription at the notifier.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import uuid
from collections.abc import Sequence

from phone.sip.digest import DigestAuth
from phone.sip.identity import Identity
from phone.sip.message import SipMessage
from phone.sip.rawsip import OutgoingRequest, RawSip, SendError

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 8000


async def send_request(
    raw: RawSip,
    identity: Identity,
    method: str,
    target: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    content_type: str | None = None,
    body: bytes = b"",
    timeout_ms: int = REQUEST_TIMEOUT_MS,
) -> SipMessage | None:
    """Send one out-of-dialog `method` request to `target`; return its final response.

    Raises `SendError` when pjsip cannot build or send it (a bad URI or header).
    """
    method = method.upper()
    auth = DigestAuth(identity.credentials, f"{method} {target}")
    call_id = uuid.uuid4().hex
    from_ = f"<{identity.aor}>;tag={secrets.token_hex(6)}"
    cseq = secrets.randbelow(1 << 16) + 1
    loop = asyncio.get_running_loop()
    while True:
        extra = [("Route", route) for route in identity.route]
        extra += headers
        authorization = auth.header(method, target)
        if authorization is not None:
            extra.append(authorization)
        request = OutgoingRequest(
            method=method,
            target=target,
            from_=from_,
            to=f"<{target}>",
            call_id=call_id,
            cseq=cseq,
            contact=identity.contact(target),
            headers=tuple(extra),
            content_type=content_type,
            body=body,
        )
        answered: asyncio.Future[SipMessage | None] = loop.create_future()
        raw.send(request, functools.partial(_settle, answered), timeout_ms)
        response = await answered
        status = None if response is None else response.status
        if response is None or status is None:
            log.warning("%s to %s: no answer", method, target)
            return None
        if status in (401, 407) and auth.challenged(response):
            cseq += 1
            continue
        if 200 <= status < 300:
            auth.accepted()
        else:
            log.info("%s to %s: %d %s", method, target, status, response.reason)
        return response


def _settle(future: asyncio.Future[SipMessage | None], response: SipMessage | None) -> None:
    """The transaction's callback: hands the final response to the waiting
    coroutine, unless it was cancelled meanwhile."""
    if not future.done():
        future.set_result(response)


__all__ = ["REQUEST_TIMEOUT_MS", "SendError", "send_request"]
