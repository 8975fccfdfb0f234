"""Requests we build ourselves, and the out-of-dialog ones we send once and wait for.

`build_request` makes every request that goes out through `RawSip.send`
(SUBSCRIBE, PUBLISH, the registrar watch's REGISTER query, the flow probe's
OPTIONS, and the MESSAGE and REFER below) the same way: the account's Route,
Authorization once challenged, a From tag, To, Contact (RFC 3261 section
8.1.1).

MESSAGE (RFC 3428) and REFER (RFC 3515): pjsua2 sends MESSAGE only through
a `Buddy` and REFER only inside a call, so these go out like PUBLISH does in
`phone.sip.publication`: with a fresh Call-ID and From tag, sent by
`RawSip.send` in a UAC transaction. A 401/407 is answered once with the
account's digest credentials, on a new CSeq in the same Call-ID
(section 22.2). The caller gets the final response, or None when there was
none (timeout, transport error).

A REFER outside a dialog creates an implicit `refer` subscription (RFC 3515
section 2.4.4) in the dialog its 2xx makes: `send_refer` has the subscriber
hand that dialog's NOTIFYs over (they may come before the 202), answers each
(200; 489 for another event, 415 for another body, 400 for a bad one) and
reports the referred request's status from the message/sipfrag body (section
2.4.5), until `Subscription-State: terminated`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from phone.payloads import sipfrag
from phone.payloads.error import PayloadError
from phone.sip.digest import DigestAuth
from phone.sip.identity import Identity
from phone.sip.message import SipMessage
from phone.sip.rawsip import OutgoingRequest, RawSip, SendError

if TYPE_CHECKING:
    from phone.sip.subscription import Subscriber  # the services import it, after REGISTER

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 8000


def new_tag() -> str:
    """A From (or dialog's local) tag: random, as RFC 3261 section 19.3 asks."""
    return secrets.token_hex(6)


def build_request(
    identity: Identity,
    method: str,
    target: str,
    *,
    call_id: str,
    cseq: int,
    from_tag: str | None = None,
    to: str | None = None,
    to_tag: str | None = None,
    route: Sequence[str] | None = None,
    auth: DigestAuth | None = None,
    headers: Sequence[tuple[str, str]] = (),
    contact: bool = True,
    content_type: str | None = None,
    body: bytes = b"",
) -> OutgoingRequest:
    """`method` from `identity` to the Request-URI `target` (RFC 3261 section 8.1.1).

    Route: the account's outbound route, or a dialog's `route` set (section
    12.2.1.1); then `headers`, then Authorization when `auth` holds a
    challenge (section 22.2). From: the AOR with `from_tag` (fresh unless
    given). To: `to` (default `target`), with `to_tag` once the dialog exists.
    Contact: the account's for the To URI, none with `contact=False` (a
    REGISTER that queries bindings, section 10.2.3).
    """
    to = to or target
    extra = [("Route", value) for value in (identity.route if route is None else route)]
    extra += headers
    authorization = None if auth is None else auth.header(method, target)
    if authorization is not None:
        extra.append(authorization)
    return OutgoingRequest(
        method=method,
        target=target,
        from_=f"<{identity.aor}>;tag={from_tag or new_tag()}",
        to=f"<{to}>" + (f";tag={to_tag}" if to_tag else ""),
        call_id=call_id,
        cseq=cseq,
        contact=identity.contact(to) if contact else None,
        headers=tuple(extra),
        content_type=content_type,
        body=body,
    )


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
    call_id: str | None = None,
    from_tag: str | None = None,
) -> SipMessage | None:
    """Send one out-of-dialog `method` request to `target`; return its final response.

    `call_id` and `from_tag` are fresh unless given (for a dialog the request
    may create). Raises `SendError` when pjsip cannot build or send it (a bad
    URI or header).
    """
    method = method.upper()
    auth = DigestAuth(identity.credentials, f"{method} {target}")
    call_id = call_id or uuid.uuid4().hex
    from_tag = from_tag or new_tag()
    cseq = secrets.randbelow(1 << 16) + 1
    loop = asyncio.get_running_loop()
    while True:
        request = build_request(
            identity,
            method,
            target,
            call_id=call_id,
            cseq=cseq,
            from_tag=from_tag,
            auth=auth,
            headers=headers,
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


@dataclass(frozen=True)
class ReferProgress:
    """One NOTIFY of a REFER's implicit subscription: how the referred request fares."""

    status: int  # of the referred request (e.g. the INVITE the focus sent Bob)
    reason: str
    final: bool  # the subscription ended: no more progress comes


ProgressCallback = Callable[[ReferProgress], None]


async def send_refer(
    raw: RawSip,
    subscriber: Subscriber,
    target: str,
    refer_to: str,
    on_progress: ProgressCallback | None = None,
) -> SipMessage | None:
    """REFER `target` to `refer_to` outside a dialog; the final response.

    While the REFER is accepted (2xx), its progress NOTIFYs go to
    `on_progress` (on the loop) until the notifier ends the subscription.
    """
    call_id, tag = uuid.uuid4().hex, new_tag()
    loop = asyncio.get_running_loop()
    subscriber.follow(
        call_id, tag, functools.partial(_on_refer_notify, loop, on_progress, subscriber)
    )
    try:
        response = await send_request(
            raw,
            subscriber.identity,
            "REFER",
            target,
            headers=(("Refer-To", refer_to),),
            call_id=call_id,
            from_tag=tag,
        )
    except BaseException:
        subscriber.unfollow(call_id, tag)
        raise
    if response is None or not 200 <= (response.status or 0) < 300:
        subscriber.unfollow(call_id, tag)
    return response


def _on_refer_notify(
    loop: asyncio.AbstractEventLoop,
    on_progress: ProgressCallback | None,
    subscriber: Subscriber,
    message: SipMessage,
    respond: Callable[[int], None],
) -> None:
    event = (message.header("event") or "").split(";", 1)[0].strip().lower()
    if event != "refer":
        respond(489)
        return
    if message.content_type != sipfrag.CONTENT_TYPE:
        respond(415)
        return
    try:
        fragment = sipfrag.parse(message.body)
    except PayloadError as exc:
        log.warning("REFER progress unreadable: %s", exc)
        respond(400)
        return
    respond(200)
    state = (message.header("subscription-state") or "").split(";", 1)[0].strip().lower()
    final = state == "terminated"
    if final:
        subscriber.unfollow(message.call_id, message.to.tag or "")
    log.info("REFER progress: %d %s%s", fragment.status, fragment.reason, " (final)" * final)
    if on_progress is not None:
        loop.call_soon(on_progress, ReferProgress(fragment.status, fragment.reason, final))


def _settle(future: asyncio.Future[SipMessage | None], response: SipMessage | None) -> None:
    """The transaction's callback: hands the final response to the waiting
    coroutine, unless it was cancelled meanwhile."""
    if not future.done():
        future.set_result(response)


__all__ = [
    "REQUEST_TIMEOUT_MS",
    "ReferProgress",
    "SendError",
    "build_request",
    "new_tag",
    "send_refer",
    "send_request",
]
