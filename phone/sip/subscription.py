"""SIP event subscriptions, subscriber side (RFC 6665), for any event package.

Why a Python state machine and not pjsip's `pjsip_evsub_*`: the evsub
framework is exported, but using it from outside pjsua means creating dialogs
(`pjsip_dlg_create_uac`) and giving them credentials through the private
`dlg->auth_sess` and the 2.15-changed `pjsip_cred_info`, and registering each
package with pjsip; every step adds a struct layout we would have to check.
Here the dialog state (Call-ID, tags, CSeq, route set, remote target) is a few
Python fields, requests go out through `RawSip.send` (a pjsip UAC transaction
per request, so retransmission is pjsip's), NOTIFYs come in through the
`RawSip` request hook and are answered statelessly, and digest is
`phone.sip.digest`. The only layouts involved are the ones `RawSip` checks.

Behaviour, by RFC 6665 section:
* 4.1.2.1/4.1.2.2: SUBSCRIBE with Event, Accept, Expires, and `Supported:
  eventlist` for RLS (RFC 4662 section 4); 401/407 are answered with digest;
  423 takes Min-Expires; refreshes go out in the dialog before expiry, at the
  expiry of the 2xx or of the last NOTIFY's `expires`, whichever is shorter.
* 4.1.3: every NOTIFY of a live subscription gets 200, one matching none 481
  (`Subscriber`; a REFER's implicit subscription is `follow`ed by its sender), an old CSeq 500, a wrong Event 489. On
  `Subscription-State: terminated`, `deactivated`/`timeout` re-subscribe now,
  `probation`/`giveup` after `retry-after` (else back-off), `rejected`/
  `noresource` stop and report.
* 4.2.1.2 (and RFC 4662 section 5.3): a version gap in a partial document is
  repaired by a refresh, which brings full state.
* Recovery: a refresh that times out, or any 5xx/408, drops the dialog and
  re-subscribes with exponential back-off (1 s doubling to 60 s, or the
  server's Retry-After); a 481 re-subscribes at once.
* Notifier restarts: a restarted server may have lost our subscriptions and
  has no way to tell us, so `Subscriber.watch_flow` keeps an eye on the flow
  to the proxy, as RFC 5626 section 4.4 does for registrations: an OPTIONS
  every few seconds, and the flow is known by the `received`/`rport` the
  proxy reports in its Via. When that flow breaks (no answer) or changes (a
  new TCP connection after the server closed the old one), every
  subscription is re-established in a new dialog; the old dialogs' NOTIFYs,
  if the server kept them, get 481 and end there. Over UDP a restart between
  two OPTIONS goes unnoticed until the next refresh, so the core calls
  `resubscribe_all()` when it learns of a restart another way: a registered
  phone's `RegistrarWatch` finds its binding gone. It queries the registrar
  as often as the probe would, and hands each answer to `flow_answered`
  instead of an OPTIONS of its own.
* Shutdown: `Subscriber.close()` sends `Expires: 0` for each live subscription.

Everything runs on the event-loop thread (pjsua in poll mode); notifications
are handed to the plugin's callback with `loop.call_soon`, never from inside C.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from phone.payloads.error import PayloadError
from phone.payloads.sequence import VersionGap
from phone.retry import Backoff, Outcome, classify, refresh_delay
from phone.sip.digest import Credentials, DigestAuth
from phone.sip.identity import Identity
from phone.sip.message import MessageError, NameAddr, SipMessage, header_params
from phone.sip.oversize import Oversized
from phone.sip.packages import DEFAULT_ACCEPT, EVENTLIST_ACCEPT, EventPackage, PackageState
from phone.sip.rawsip import RawSip, SendError
from phone.sip.request import build_request, new_tag

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 8000  # a dead notifier is noticed well before timer B (32 s)
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
FRESH_DIALOG_S = 1.0  # `resubscribe_all` leaves dialogs younger than this alone


class SubscriptionState(StrEnum):
    SUBSCRIBING = "subscribing"  # SUBSCRIBE sent, no NOTIFY yet
    PENDING = "pending"  # the notifier waits for authorization (RFC 6665 4.1.3)
    ACTIVE = "active"
    RETRYING = "retrying"  # the dialog is gone; a new SUBSCRIBE is scheduled
    TERMINATED = "terminated"  # final: ended by us, rejected, or no such resource


@dataclass(frozen=True)
class Notification:
    """One NOTIFY, parsed once, as the plugins receive it."""

    event: EventPackage
    target: str
    state: SubscriptionState
    content_type: str | None
    body: bytes
    document: Any  # the typed document of this NOTIFY, None without a body
    merged: Any  # the subscription's state after it (see phone.sip.packages.Decoded)
    error: str | None  # why the body could not be read, if it could not
    received_ns: int  # time.perf_counter_ns() when the hook got the NOTIFY


@dataclass(frozen=True)
class SubscriptionEnded:
    """The subscription is over for good: ended by us or refused by the notifier."""

    event: EventPackage
    target: str
    reason: str  # a Subscription-State reason, or "ended", or "status <code>"
    status: int | None  # the final SIP status of the SUBSCRIBE, if that ended it


NotificationCallback = Callable[[Notification], None]
EndCallback = Callable[[SubscriptionEnded], None]


class Subscription:
    """One subscription (RFC 6665), across re-subscriptions that replace its dialog."""

    def __init__(
        self,
        subscriber: Subscriber,
        event: EventPackage,
        target: str,
        accept: Sequence[str],
        eventlist: bool,
        expires: int,
        on_notification: NotificationCallback,
        on_end: EndCallback | None,
        identity: Identity,
    ) -> None:
        self.event = event
        self.identity = identity
        self.target = target
        self.accept = tuple(accept)
        self.eventlist = eventlist
        self.expires = expires
        self.state = SubscriptionState.SUBSCRIBING
        self._subscriber = subscriber
        self._on_notification = on_notification
        self._on_end = on_end
        self._package = PackageState(event, eventlist)
        self._timer: asyncio.TimerHandle | None = None
        self._backoff = Backoff(BACKOFF_FIRST, BACKOFF_MAX)
        self._ending = False
        self._auth = DigestAuth(identity.credentials, f"SUBSCRIBE {event}")
        self._new_dialog()

    # ------------------------------------------------------------------ public

    def refresh(self) -> None:
        """Refresh now (in the dialog); the notifier answers with a full-state NOTIFY."""
        if self.state is SubscriptionState.TERMINATED or self._ending:
            return
        if self.remote_tag is None:
            self.resubscribe("refresh before the dialog existed")
        else:
            self._send(self.expires)

    def end(self) -> None:
        """Unsubscribe (Expires: 0); `on_end` follows with reason "ended"."""
        if self.state is SubscriptionState.TERMINATED or self._ending:
            return
        self._ending = True
        self._cancel_timer()
        if self.state is SubscriptionState.RETRYING:
            self._finish("ended", None)
            return
        self._send(0)

    def start(self) -> None:
        """Send the first SUBSCRIBE (RFC 6665 section 4.1.2.1)."""
        self._send(self.expires)

    @property
    def ending(self) -> bool:
        return self._ending

    @property
    def awaiting_notify(self) -> bool:
        """The SUBSCRIBE got its 2xx but no NOTIFY has come in this dialog, though
        the notifier sends one at once (RFC 6665 section 4.2.1.2): if it stays so,
        the NOTIFY was lost on the way, for example being too long for pjsip."""
        return self.state is SubscriptionState.SUBSCRIBING and self.remote_tag is not None

    @property
    def dialog_key(self) -> tuple[str, str]:
        return self.call_id, self.local_tag

    # ------------------------------------------------------------------ dialog

    def _new_dialog(self) -> None:
        self.dialog_started = self._subscriber.loop.time()
        self.call_id = uuid.uuid4().hex
        self.local_tag = new_tag()
        self.remote_tag: str | None = None
        self.cseq = secrets.randbelow(1 << 16) + 1
        self.remote_cseq: int | None = None
        self.remote_target = self.target
        self.route: tuple[str, ...] = self.identity.route
        self._auth.reset()
        self._package.reset()

    def _send(self, expires: int) -> None:
        self.cseq += 1
        headers = [
            ("Event", self.event.value),
            ("Accept", ", ".join(self.accept)),
            ("Expires", str(expires)),
            ("Allow-Events", self.event.value),
        ]
        if self.eventlist:
            headers.append(("Supported", "eventlist"))
        request = build_request(
            self.identity,
            "SUBSCRIBE",
            self.remote_target,
            call_id=self.call_id,
            cseq=self.cseq,
            from_tag=self.local_tag,
            to=self.target,
            to_tag=self.remote_tag,
            route=self.route,
            auth=self._auth,
            headers=headers,
        )
        key = self.dialog_key
        self._subscriber.track(self)
        try:
            self._subscriber.raw.send(
                request,
                lambda response: self._on_response(key, expires, response),
                REQUEST_TIMEOUT_MS,
            )
        except SendError as exc:
            log.error("SUBSCRIBE %s to %s not sent: %s", self.event, self.target, exc)
            self._retry_later(None)

    def _on_response(self, key: tuple[str, str], expires: int, response: SipMessage | None) -> None:
        if self._subscriber.closed:
            return  # a late answer after shutdown: nothing left to do
        if key != self.dialog_key or self.state is SubscriptionState.TERMINATED:
            return  # the answer to a dialog we already replaced
        if response is None or response.status is None:
            log.warning("SUBSCRIBE %s to %s: no answer", self.event, self.target)
            self._after_failure(None)
            return
        status = response.status
        outcome = classify(status)
        if outcome is Outcome.SUCCESS:
            self._auth.accepted()
            self._on_success(response, expires)
        elif outcome is Outcome.CHALLENGE and self._auth.challenged(response):
            self._send(expires)
        elif outcome is Outcome.TOO_BRIEF and response.header("min-expires"):
            self.expires = _int(response.header("min-expires"), self.expires)
            self._send(self.expires if expires else 0)
        elif status == 481 and not self._ending:
            log.info(
                "SUBSCRIBE %s to %s: dialog gone (481), re-subscribing", self.event, self.target
            )
            self.resubscribe("481")
        elif self._ending:
            self._finish("ended", status)
        elif outcome is Outcome.RETRY:
            log.warning("SUBSCRIBE %s to %s: %d, will retry", self.event, self.target, status)
            self._after_failure(response)
        else:
            log.warning(
                "SUBSCRIBE %s to %s refused: %d %s",
                self.event,
                self.target,
                status,
                response.reason,
            )
            self._finish(f"status {status}", status)

    def _on_success(self, response: SipMessage, expires: int) -> None:
        if self._ending or expires == 0:
            if self.state is not SubscriptionState.TERMINATED:
                self._finish("ended", None)
            return
        if self.remote_tag is None:
            self.remote_tag = response.to.tag
            self.route = tuple(reversed(response.header_values("record-route"))) or self.route
        contact = response.header("contact")
        if contact:
            self.remote_target = NameAddr.parse(contact).uri
        granted = _int(response.header("expires"), expires)
        self._backoff.reset()
        self._schedule_refresh(granted)

    def _after_failure(self, response: SipMessage | None) -> None:
        if self._ending:
            self._finish("ended", None if response is None else response.status)
            return
        retry_after = _int(None if response is None else response.header("retry-after"), 0)
        self._retry_later(retry_after or None)

    # ------------------------------------------------------------------ NOTIFY

    def handle_notify(
        self, message: SipMessage, respond: Callable[[int], None], received_ns: int
    ) -> None:
        """Answer and act on one NOTIFY of this dialog (RFC 6665 section 4.1.3)."""
        cseq, _ = message.cseq
        if self.state is SubscriptionState.TERMINATED:
            respond(200)  # the final NOTIFY after our unsubscribe
            return
        from_tag = message.from_.tag
        if self.remote_tag is not None and from_tag != self.remote_tag:
            respond(481)  # a second fork: RFC 6665 4.1.2.4 allows refusing it
            return
        if self.remote_cseq is not None and cseq <= self.remote_cseq:
            respond(200 if cseq == self.remote_cseq else 500)
            return
        event, _ = header_params(message.header("event") or "")
        if event != self.event.value:
            respond(489)
            return
        sub_state = message.header("subscription-state")
        if sub_state is None:
            respond(400)
            return
        respond(200)
        self.remote_cseq = cseq
        if self.remote_tag is None:
            # The NOTIFY created the dialog (RFC 6665 4.1.2.4): its route set, in order.
            self.remote_tag = from_tag
            self.route = tuple(message.header_values("record-route")) or self.route
        contact = message.header("contact")
        if contact:
            self.remote_target = NameAddr.parse(contact).uri
        token, params = header_params(sub_state)
        if token == "terminated":
            self._deliver(message, SubscriptionState.TERMINATED, received_ns)
            self._on_terminated(params)
            return
        if self._ending:
            return
        self.state = SubscriptionState.PENDING if token == "pending" else SubscriptionState.ACTIVE
        if "expires" in params:
            self._schedule_refresh(_int(params["expires"], self.expires), only_sooner=True)
        self._deliver(message, self.state, received_ns)

    def lost_notify(self, why: str) -> None:
        """A NOTIFY of this dialog never reached us whole: the plugin gets a
        notification with `error` set and no body, as for an unreadable one."""
        notification = Notification(
            event=self.event,
            target=self.target,
            state=self.state,
            content_type=None,
            body=b"",
            document=None,
            merged=None,
            error=why,
            received_ns=time.perf_counter_ns(),
        )
        self._subscriber.loop.call_soon(self._on_notification, notification)

    def _deliver(self, message: SipMessage, state: SubscriptionState, received_ns: int) -> None:
        document = merged = error = None
        content_type = message.content_type
        if message.body and content_type:
            try:
                decoded = self._package.decode(
                    content_type, message.require("content-type"), message.body
                )
                document, merged = decoded.document, decoded.merged
            except VersionGap as exc:
                log.info("%s from %s: %s", self.event, self.target, exc)
                error = str(exc)
                self._package.reset()
                self.refresh()
            except PayloadError as exc:
                log.warning("%s NOTIFY from %s has a bad body: %s", self.event, self.target, exc)
                error = str(exc)
        notification = Notification(
            event=self.event,
            target=self.target,
            state=state,
            content_type=content_type,
            body=message.body,
            document=document,
            merged=merged,
            error=error,
            received_ns=received_ns,
        )
        self._subscriber.loop.call_soon(self._on_notification, notification)

    def _on_terminated(self, params: dict[str, str]) -> None:
        reason = params.get("reason", "")
        retry_after = _int(params.get("retry-after"), 0)
        if self._ending:
            self._finish("ended", None)
        elif reason in ("deactivated", "timeout"):
            log.info("%s subscription to %s %s: re-subscribing", self.event, self.target, reason)
            self.resubscribe(reason)
        elif reason in ("rejected", "noresource", "invariant"):
            log.warning("%s subscription to %s %s", self.event, self.target, reason)
            self._finish(reason, None)
        else:  # probation, giveup, or no reason (RFC 6665 4.1.3)
            log.info(
                "%s subscription to %s terminated (%s), retrying",
                self.event,
                self.target,
                reason or "no reason",
            )
            self._retry_later(retry_after or None)

    # ------------------------------------------------------------------ timers

    def _schedule_refresh(self, expires: int, only_sooner: bool = False) -> None:
        delay = refresh_delay(expires)
        loop = self._subscriber.loop
        if only_sooner and self._timer is not None and self._timer.when() <= loop.time() + delay:
            return
        self._cancel_timer()
        self._timer = loop.call_later(delay, self.refresh)

    def _retry_later(self, delay: float | None) -> None:
        self._cancel_timer()
        self.state = SubscriptionState.RETRYING
        wait = self._backoff.delay(delay)
        log.info("%s subscription to %s: new SUBSCRIBE in %.1f s", self.event, self.target, wait)
        self._timer = self._subscriber.loop.call_later(wait, self.resubscribe, "retry")

    def resubscribe(self, why: str) -> None:
        """Drop the dialog and subscribe again in a new one (full state follows)."""
        self._cancel_timer()
        self._subscriber.forget(self)
        self._new_dialog()
        self.state = SubscriptionState.SUBSCRIBING
        log.debug("%s subscription to %s: new dialog (%s)", self.event, self.target, why)
        self._send(self.expires)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self, reason: str, status: int | None) -> None:
        self._cancel_timer()
        self.state = SubscriptionState.TERMINATED
        # The notifier may still send the terminated NOTIFY: keep answering it
        # 200 for as long as a transaction lives (64*T1), then forget the dialog.
        self._subscriber.loop.call_later(32.0, self._subscriber.forget, self)
        self._subscriber.discard(self)
        if self._on_end is not None:
            self._subscriber.loop.call_soon(
                self._on_end, SubscriptionEnded(self.event, self.target, reason, status)
            )


NotifyHandler = Callable[[SipMessage, Callable[[int], None]], None]
"""Gets a NOTIFY of a followed dialog and answers it (`respond(code)`) at once."""


class Subscriber:
    """All subscriptions of the phone; owns the NOTIFY side of the request hook.

    One per `RawSip`: NOTIFYs that match none of its dialogs get 481 here, so a
    second instance would refuse the first one's. `identity` is the default
    sender; `subscribe(identity=...)` sends as another account.
    """

    def __init__(self, raw: RawSip, identity: Identity, loop: asyncio.AbstractEventLoop) -> None:
        self.raw = raw
        self.identity = identity
        self.loop = loop
        self._dialogs: dict[tuple[str, str], Subscription] = {}
        self._all: set[Subscription] = set()
        self._followed: dict[tuple[str, str], NotifyHandler] = {}
        self._flow_proxy: str | None = None
        self._flow_interval = 5.0
        self._flow: str | None = None  # received:rport of the last answered probe
        self._flow_broken = False
        self._flow_timer: asyncio.TimerHandle | None = None
        raw.on_request("NOTIFY", self._on_notify)
        raw.oversize.on_oversize(self._on_oversize)
        self._hooked = True
        self.closed = False

    @classmethod
    def for_account(
        cls,
        raw: RawSip,
        account: Any,
        loop: asyncio.AbstractEventLoop,
        credentials: Credentials | None,
        route: Sequence[str] = (),
    ) -> Subscriber:
        """A subscriber sending as the pjsua2 `account` (its AOR and its Contact per target)."""
        account_id = account.getId()
        identity = Identity(
            aor=NameAddr.parse(account.getInfo().uri).uri,
            contact=lambda target: raw.account_contact(account_id, target),
            credentials=credentials,
            route=tuple(route),
        )
        return cls(raw, identity, loop)

    def subscribe(
        self,
        event: EventPackage | str,
        target: str,
        on_notification: NotificationCallback,
        *,
        accept: Sequence[str] | None = None,
        eventlist: bool = False,
        expires: int = 600,
        on_end: EndCallback | None = None,
        identity: Identity | None = None,
    ) -> Subscription:
        """Subscribe to `event` of `target`; notifications arrive on the loop."""
        package = EventPackage(event)
        if accept is None:
            accept = EVENTLIST_ACCEPT if eventlist else DEFAULT_ACCEPT[package]
        subscription = Subscription(
            self,
            package,
            target,
            accept,
            eventlist,
            expires,
            on_notification,
            on_end,
            identity or self.identity,
        )
        self._all.add(subscription)
        log.info("subscribing to %s of %s (eventlist=%s)", package, target, eventlist)
        subscription.start()
        return subscription

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._all)

    def resubscribe_all(self, why: str) -> None:
        """Re-establish every live subscription in a new dialog (full state follows).

        One that began its dialog less than `FRESH_DIALOG_S` ago is left to it:
        two signs of one fault (the flow answers again, the registration
        recovers) come together, and one new dialog is enough."""
        now = self.loop.time()
        live = [
            s
            for s in self._all
            if s.state is not SubscriptionState.TERMINATED
            and not s.ending
            and now - s.dialog_started >= FRESH_DIALOG_S
        ]
        if not live:
            return
        log.info("re-subscribing %d subscriptions: %s", len(live), why)
        for subscription in live:
            subscription.resubscribe(why)

    def watch_flow(self, proxy: str, interval: float = 5.0) -> None:
        """Probe the flow to `proxy` (a SIP URI) with OPTIONS every `interval` seconds."""
        self._flow_proxy = proxy
        self._flow_interval = interval
        self._probe_flow()

    def _probe_flow(self) -> None:
        self._flow_timer = None
        if self._flow_proxy is None:
            return
        request = build_request(
            self.identity, "OPTIONS", self._flow_proxy, call_id=uuid.uuid4().hex, cseq=1
        )
        try:
            self.raw.send(request, self._on_flow_answer, int(self._flow_interval * 1000))
        except SendError as exc:
            log.warning("flow probe to %s not sent: %s", self._flow_proxy, exc)
            self._on_flow_answer(None)

    def _on_flow_answer(self, response: SipMessage | None) -> None:
        self.flow_answered(response)
        if self._flow_proxy is not None:
            self._flow_timer = self.loop.call_later(self._flow_interval, self._probe_flow)

    def flow_answered(self, response: SipMessage | None) -> None:
        """A request to the proxy got `response` (None: no answer). The probe's
        OPTIONS report here, and so can any other regular request to the proxy
        (`RegistrarWatch`'s REGISTER queries) instead of a probe of its own."""
        if response is None:
            if not self._flow_broken:
                log.warning("flow to the proxy: no answer")
            self._flow_broken = True
            return
        vias = response.header_values("via")
        _, params = header_params(vias[0]) if vias else ("", {})
        flow = f"{params.get('received', '')}:{params.get('rport', '')}"
        if self._flow is not None and flow != self._flow:
            log.warning("flow to the proxy: was %s, now %s", self._flow, flow)
            self.resubscribe_all("the flow to the proxy changed")
        elif self._flow_broken:
            log.warning("flow to the proxy answers again")
            self.resubscribe_all("the flow to the proxy broke")
        self._flow = flow
        self._flow_broken = False

    def follow(self, call_id: str, local_tag: str, handler: NotifyHandler) -> None:
        """Hand the NOTIFYs of a dialog we did not SUBSCRIBE for to `handler`: the
        implicit subscription of a REFER (RFC 3515 section 2.4.4)."""
        self._followed[(call_id, local_tag)] = handler

    def unfollow(self, call_id: str, local_tag: str) -> None:
        self._followed.pop((call_id, local_tag), None)

    def track(self, subscription: Subscription) -> None:
        self._dialogs[subscription.dialog_key] = subscription

    def forget(self, subscription: Subscription) -> None:
        """Stop routing NOTIFYs of the subscription's current dialog to it."""
        if self._dialogs.get(subscription.dialog_key) is subscription:
            del self._dialogs[subscription.dialog_key]

    def discard(self, subscription: Subscription) -> None:
        self._all.discard(subscription)

    async def close(self, timeout: float = 2.0) -> None:
        """Unsubscribe everything (Expires: 0), wait up to `timeout` for the answers, unhook."""
        self._flow_proxy = None
        if self._flow_timer is not None:
            self._flow_timer.cancel()
        live = [s for s in self._all if s.state is not SubscriptionState.TERMINATED]
        for subscription in live:
            subscription.end()
        deadline = self.loop.time() + timeout
        while any(s.state is not SubscriptionState.TERMINATED for s in live):
            if self.loop.time() >= deadline:
                log.warning("%d subscriptions did not confirm the unsubscribe", len(self._all))
                break
            await asyncio.sleep(0.02)
        if self._hooked:
            self.raw.remove_handler("NOTIFY", self._on_notify)
            self.raw.oversize.remove_handler(self._on_oversize)
            self._hooked = False
        self.closed = True

    def _on_oversize(self, dropped: Oversized) -> None:
        """A NOTIFY of ours too long for pjsip: its subscription hears of the loss."""
        if not dropped.start_line.upper().startswith("NOTIFY "):
            return
        for (call_id, _), subscription in self._dialogs.items():
            if call_id == dropped.call_id:
                subscription.lost_notify("NOTIFY longer than pjsip's receive buffer, dropped")
                return

    def _on_notify(self, message: SipMessage, respond: Callable[[int], None]) -> bool:
        received_ns = time.perf_counter_ns()
        try:
            to_tag = message.to.tag or ""
            from_tag = message.from_.tag or ""
            subscription = self._dialogs.get((message.call_id, to_tag))
            if subscription is not None:
                subscription.handle_notify(message, respond, received_ns)
                return True
            followed = self._followed.get((message.call_id, to_tag))
            if followed is not None:
                followed(message, respond)
                return True
        except MessageError as exc:
            log.warning("bad NOTIFY: %s", exc)
            respond(400)
            return True
        if to_tag and self.raw.dialog_exists(message.call_id, to_tag, from_tag):
            return False  # pjsua's own (a buddy, a call's REFER): let pjsip have it
        log.info("NOTIFY for no subscription (Call-ID %s): 481", message.call_id)
        respond(481)
        return True


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
