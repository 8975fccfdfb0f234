"""Noticing at once that the registrar is back, or that it has forgotten us.

pjsua refreshes a registration only when it falls due, and a failed one is
retried on the account's back-off, which doubles up to a minute. So two
faults went unnoticed for long:

* the network comes back after an outage, and the next retry is still up to
  a minute away;
* the registrar restarts and loses its bindings (a registrar that keeps them
  in memory): calls to the phone get 404 until the next refresh, minutes
  later, and a presence server restarted with it has lost our subscriptions
  without a word (RFC 6665 gives it no way to say so).

Every few seconds the watch asks the registrar for our bindings with a
REGISTER that has no Contact, a query that changes nothing (RFC 3261 section
10.2.3), sent through the account's outbound route and answered with digest
like any REGISTER. Any answer while the registration waits on its back-off
means the registrar can be reached again: register now. A 2xx that lists no
Contact of ours while we are registered means our binding is gone: register
now, and renew the subscriptions (`on_forgotten`).

A registrar that rewrites Contacts (some do behind NAT) never lists ours; once
a fresh registration still does not show up, the watch says so once and
stops checking bindings, keeping the reachability check.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Callable
from typing import Protocol

from phone.retry import Outcome, classify
from phone.sip.digest import DigestAuth
from phone.sip.identity import Identity
from phone.sip.message import MessageError, NameAddr, SipMessage
from phone.sip.rawsip import RawSip, SendError
from phone.sip.request import build_request
from phone.uri import SipUriError, parse_sip_uri

log = logging.getLogger(__name__)

INTERVAL_S = 5.0  # a lost binding is noticed, and acted on, within 10 s


class Registration(Protocol):
    """What the watch needs of the account (`phone.sip.account.SipAccount`)."""

    registered: bool

    def register_now(self, why: str) -> None: ...


def _binding(uri: str) -> tuple[str | None, str, int | None]:
    parsed = parse_sip_uri(uri)
    return parsed.user, parsed.host, parsed.port


class RegistrarWatch:
    """Queries `registrar` for the bindings of `identity.aor` every `interval` seconds.

    Each answer, or None for none, also goes to `on_answer`: the subscriber
    watches the flow to the proxy with it (`Subscriber.flow_answered`), so one
    request every few seconds serves both."""

    def __init__(
        self,
        raw: RawSip,
        identity: Identity,
        registrar: str,
        registration: Registration,
        on_forgotten: Callable[[], None],
        on_answer: Callable[[SipMessage | None], None],
        loop: asyncio.AbstractEventLoop,
        interval: float = INTERVAL_S,
    ) -> None:
        self._raw = raw
        self._identity = identity
        self._registrar = registrar
        self._registration = registration
        self._on_forgotten = on_forgotten
        self._on_answer_seen = on_answer
        self._loop = loop
        self._interval = interval
        self._auth = DigestAuth(identity.credentials, "REGISTER query")
        self._call_id = uuid.uuid4().hex
        self._cseq = secrets.randbelow(1 << 16) + 1
        self._timer: asyncio.TimerHandle | None = None
        self._rebinding = False  # we registered again because the binding was gone
        self._check_bindings = True
        self._closed = False

    def start(self) -> None:
        self._schedule()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        if not self._closed:
            self._timer = self._loop.call_later(self._interval, self._query)

    def _query(self) -> None:
        self._timer = None
        self._cseq += 1
        request = build_request(
            self._identity,
            "REGISTER",
            self._registrar,
            call_id=self._call_id,
            cseq=self._cseq,
            to=self._identity.aor,
            auth=self._auth,
            contact=False,
        )
        try:
            self._raw.send(request, self._on_answer, int(self._interval * 1000))
        except SendError as exc:
            log.debug("REGISTER query not sent: %s", exc)
            self._schedule()

    def _on_answer(self, response: SipMessage | None) -> None:
        if self._closed:
            return
        self._on_answer_seen(response)
        if response is None or response.status is None:
            self._schedule()  # no answer: the account's back-off goes on
            return
        outcome = classify(response.status)
        if outcome is Outcome.CHALLENGE and self._auth.challenged(response):
            self._query()
            return
        if outcome is not Outcome.SUCCESS:
            log.debug("REGISTER query: %d %s", response.status, response.reason)
        if not self._registration.registered:
            self._registration.register_now("the registrar answers again")
        elif outcome is Outcome.SUCCESS:
            self._auth.accepted()
            self._check_binding(response)
        self._schedule()

    def _check_binding(self, response: SipMessage) -> None:
        if not self._check_bindings:
            return
        try:
            ours = _binding(NameAddr.parse(self._identity.contact(self._registrar)).uri)
            listed = {_binding(NameAddr.parse(c).uri) for c in response.header_values("contact")}
        except (MessageError, SipUriError, SendError) as exc:
            log.warning("REGISTER query: unreadable Contact (%s); binding checks off", exc)
            self._check_bindings = False
            return
        if ours in listed:
            self._rebinding = False
        elif self._rebinding:
            log.warning(
                "the registrar does not list our Contact even after registering again "
                "(it may rewrite Contacts); binding checks off"
            )
            self._check_bindings = False
        else:
            log.warning("the registrar has lost our binding (restarted?): registering again")
            self._rebinding = True
            self._registration.register_now("binding lost")
            self._on_forgotten()
