"""Publishing our own event state (RFC 3903), for any event package.

pjsua2 publishes presence only, from its account, and hides the entity tag;
the phone also publishes dialog state (RFC 4235 bodies, for BLF watchers), so
PUBLISH goes out here like SUBSCRIBE does in `phone.sip.subscription`: built
by `phone.sip.request.build_request`, sent by `RawSip.send` in a UAC
transaction, digest by `phone.sip.digest`.

Behaviour, by RFC 3903 section:
* 4.1/4.2: the first PUBLISH carries the body and no SIP-If-Match; the 2xx
  gives the entity tag (SIP-ETag) and the granted Expires.
* 4.3: refresh before expiry without a body, with SIP-If-Match.
* 4.4: modify with the new body and SIP-If-Match.
* 4.5: remove with Expires: 0 and SIP-If-Match (on `remove()` and at shutdown).
* 6 (step 4): 412 Conditional Request Failed means the server lost our
  entity: publish the current body fresh, without SIP-If-Match.
* 423 takes Min-Expires; 401/407 are answered with digest; a timeout, 408
  or 5xx retries fresh with back-off (1 s doubling to 60 s, or Retry-After).

One request at a time per publication: a change asked for while a PUBLISH is
in flight is sent when its answer arrives, so the entity tag is never stale.
Everything runs on the event-loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from enum import StrEnum

from phone.retry import Backoff, Outcome, classify, refresh_delay
from phone.sip.digest import DigestAuth
from phone.sip.identity import Identity
from phone.sip.message import SipMessage
from phone.sip.rawsip import RawSip, SendError
from phone.sip.request import build_request

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 8000
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0


class PublicationState(StrEnum):
    IDLE = "idle"  # nothing published yet
    PUBLISHING = "publishing"  # the first PUBLISH (or a fresh one after 412) is out
    PUBLISHED = "published"  # the server holds our state under `etag`
    RETRYING = "retrying"  # a fresh PUBLISH is scheduled after a failure
    REMOVED = "removed"  # removed (Expires: 0) or refused for good


class Publication:
    """One event state of ours held by the presence server (RFC 3903 section 4)."""

    def __init__(
        self,
        raw: RawSip,
        identity: Identity,
        loop: asyncio.AbstractEventLoop,
        event: str,
        content_type: str,
        expires: int = 600,
    ) -> None:
        self.raw = raw
        self.identity = identity
        self.loop = loop
        self.event = event
        self.content_type = content_type
        self.expires = expires
        self.state = PublicationState.IDLE
        self.etag: str | None = None
        self.body: bytes | None = None  # what the server should hold
        self._call_id = uuid.uuid4().hex
        self._cseq = secrets.randbelow(1 << 16)
        self._in_flight = False
        self._dirty = False  # `body` changed since the last PUBLISH went out
        self._removing = False
        self._timer: asyncio.TimerHandle | None = None
        self._auth = DigestAuth(identity.credentials, f"PUBLISH {event}")
        self._backoff = Backoff(BACKOFF_FIRST, BACKOFF_MAX)

    def publish(self, body: bytes) -> None:
        """Publish `body` now: the first time fresh, later as a modify (section 4.4)."""
        self.body = body
        self._dirty = True
        self._removing = False
        if self.state is PublicationState.REMOVED:
            self.state = PublicationState.IDLE
        self._kick()

    @property
    def settled(self) -> bool:
        """Nothing in flight and nothing left to send: the server holds `body`."""
        return not self._in_flight and not self._dirty

    def remove(self) -> None:
        """Withdraw our state (Expires: 0, section 4.5); nothing to do if none is held."""
        self._removing = True
        self._cancel_timer()
        if self.etag is None and not self._in_flight:
            self.state = PublicationState.REMOVED
            return
        self._kick()

    async def close(self, timeout: float = 2.0) -> None:
        """Remove and wait up to `timeout` for the server's answer (shutdown)."""
        self.remove()
        deadline = self.loop.time() + timeout
        while self.state is not PublicationState.REMOVED and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._cancel_timer()
        self.state = PublicationState.REMOVED

    # ------------------------------------------------------------------ sending

    def _kick(self) -> None:
        """Send what is due unless a PUBLISH is already in flight."""
        if self._in_flight:
            return
        if self._removing:
            if self.etag is None:
                self.state = PublicationState.REMOVED
                return
            self._send(None, 0)
        elif self._dirty and self.body is not None:
            self._dirty = False
            if self.etag is None:
                self.state = PublicationState.PUBLISHING
            self._send(self.body, self.expires)

    def _refresh(self) -> None:
        self._timer = None
        if self._in_flight or self._removing:
            return
        if self.etag is None:
            self._dirty = True  # nothing held: publish fresh
            self._kick()
        else:
            self._send(None, self.expires)

    def _send(self, body: bytes | None, expires: int) -> None:
        self._cseq += 1
        headers = [("Event", self.event), ("Expires", str(expires))]
        if self.etag is not None:
            headers.append(("SIP-If-Match", self.etag))
        request = build_request(
            self.identity,
            "PUBLISH",
            self.identity.aor,
            call_id=self._call_id,
            cseq=self._cseq,
            auth=self._auth,
            headers=headers,
            content_type=self.content_type if body is not None else None,
            body=body or b"",
        )
        self._in_flight = True
        try:
            self.raw.send(
                request,
                lambda response: self._on_response(body, expires, response),
                REQUEST_TIMEOUT_MS,
            )
        except SendError as exc:
            self._in_flight = False
            log.error("PUBLISH %s not sent: %s", self.event, exc)
            self._retry_later(None)

    def _on_response(self, body: bytes | None, expires: int, response: SipMessage | None) -> None:
        self._in_flight = False
        if self.state is PublicationState.REMOVED:
            return  # a late answer after close()
        status = None if response is None else response.status
        if response is None or status is None:
            log.warning("PUBLISH %s: no answer", self.event)
            self._after_failure(None)
            return
        outcome = classify(status)
        if outcome is Outcome.SUCCESS:
            self._auth.accepted()
            self._on_success(response, expires)
        elif outcome is Outcome.CHALLENGE and self._auth.challenged(response):
            self._send(body, expires)
        elif status == 412:
            log.info(
                "PUBLISH %s: entity tag %s unknown (412), publishing fresh", self.event, self.etag
            )
            self.etag = None
            self._dirty = True
            self._kick()
        elif outcome is Outcome.TOO_BRIEF and response.header("min-expires"):
            self.expires = _int(response.header("min-expires"), self.expires)
            self._send(body, self.expires if expires else 0)
        elif self._removing:
            self._removed(f"{status} on remove")
        elif outcome is Outcome.RETRY:
            log.warning("PUBLISH %s: %d, will retry", self.event, status)
            self._after_failure(response)
        else:
            log.error("PUBLISH %s refused: %d %s", self.event, status, response.reason)
            self.etag = None
            self._removed(f"refused {status}")

    def _on_success(self, response: SipMessage, expires: int) -> None:
        if expires == 0:
            self.etag = None
            if self._removing:
                self._removed("removed")
            else:
                self._kick()  # a publish asked for while the remove was in flight
            return
        etag = response.header("sip-etag")
        if etag is None:
            log.warning(
                "PUBLISH %s: 2xx without SIP-ETag; will publish fresh next time", self.event
            )
        self.etag = etag
        self.state = PublicationState.PUBLISHED
        self._backoff.reset()
        granted = _int(response.header("expires"), expires)
        log.debug("PUBLISH %s: etag %s for %d s", self.event, etag, granted)
        self._cancel_timer()
        self._timer = self.loop.call_later(refresh_delay(granted), self._refresh)
        self._kick()

    def _after_failure(self, response: SipMessage | None) -> None:
        if self._removing:
            self.etag = None
            self._removed("no answer to remove")
            return
        self.etag = None  # the server may have lost it: the next PUBLISH is fresh
        self._dirty = True
        retry_after = _int(None if response is None else response.header("retry-after"), 0)
        self._retry_later(retry_after or None)

    def _retry_later(self, delay: float | None) -> None:
        self._cancel_timer()
        self.state = PublicationState.RETRYING
        wait = self._backoff.delay(delay)
        log.info("PUBLISH %s: retry in %.1f s", self.event, wait)
        self._timer = self.loop.call_later(wait, self._refresh)

    def _removed(self, why: str) -> None:
        self._cancel_timer()
        self.state = PublicationState.REMOVED
        log.info("publication of %s ended: %s", self.event, why)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
