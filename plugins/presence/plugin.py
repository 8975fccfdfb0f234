"""The presence plugin object: subscriptions in, LEDs and publications out.

Watching (RFC 3856, RFC 6665): with an RLS URI (`rls_uri`, or the one another
plugin found on the server, `presence_list_changed`), one SUBSCRIBE with
`Supported: eventlist` to the list (RFC 4662) and its full and partial state
folded by `rlmi.ListView`; otherwise one presence subscription per contact.
Both go through `PhoneApi.subscribe` rather than pjsua2's `Buddy`, so that
every NOTIFY arrives parsed once, with its subscription state (pending shows
as such), and subscriptions recover from a restarted server. Contacts marked
`blf` also get a `dialog` subscription (RFC 4235). Everything is shown on the
`presence` LED layer, under the core's call layer, so a call with a contact
takes its LED and the LED returns to presence when the call ends.

Publishing (RFC 3903, `PhoneApi.publish`): our presence (see `own`), and
our calls as dialog state for busy-lamp watchers. The count of watchers
waiting for our authorization (RFC 3857 watcher info) is a footer indicator.

Without a registrar (direct mode) there is no presence server, so each phone
is its own presence agent (RFC 3856 section 3): the plugin subscribes to each
contact at the contact's own address, and serves our presence to those who
subscribe to ours (`PhoneApi.serve_presence`) instead of publishing it.

Size: pjsip drops any SIP message longer than PJSIP_MAX_PKT_LEN, 4000 bytes in
the x86_64 pjsua2 wheel (the SD image sets its own), before any of our code
sees it; pjsip logs "Rx buffer overflow". A full-state RLS NOTIFY takes about
600 bytes per contact with presence, so with the wheel a list of more than
about five contacts needs a server that splits its NOTIFYs (Kamailio:
`modparam("rls", "max_notify_body_length", 3000)`; see bench/presence.py).
Against a server that does not split, the list's long NOTIFY is lost: over
TCP pjsip drops it (`phone.sip.oversize` tells its subscription), over UDP it
arrives cut short and unreadable, or the SUBSCRIBE is answered 2xx and no
NOTIFY comes within `LIST_NOTIFY_WAIT_S`. Then the plugin ends the list
subscription, watches each contact on its own (small NOTIFYs), says so once
in the log and with `RLS!` in the footer, and tries the list again every
`rls_retry` seconds; the per-contact subscriptions end once a retried list
has delivered readable NOTIFYs for `LIST_NOTIFY_WAIT_S`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

from phone.api import (
    CallInfo,
    Contact,
    Led,
    Notification,
    PhoneApi,
    Publication,
    Subscription,
    SubscriptionEnded,
    SubscriptionState,
    address_key,
    contact_index,
)
from phone.hookspecs import hookimpl
from phone.payloads import dialoginfo, pidf
from phone.payloads.rlmi import InstanceState, ListView
from phone.payloads.watcherinfo import WatcherInfo
from plugins.presence import own
from plugins.presence.state import (
    LABELS,
    ContactPresence,
    ContactState,
    from_dialogs,
    from_presence,
    shown,
)

log = logging.getLogger(__name__)

LAYER = "presence"
INDICATOR = "presence"
LIST_INDICATOR = "presence.rls"
LIST_FALLBACK_TEXT = "RLS!"
LIST_NOTIFY_WAIT_S = 4.0  # the first NOTIFY follows the 2xx at once (RFC 6665 4.2.1.2)
LONG_PRESS_SECONDS = 4.0
STOP_WAIT_S = 2.0


@dataclass(frozen=True)
class PresenceSettings:
    leds: dict[ContactState, Led]
    rls_uri: str | None = None
    publish: bool = True
    watchers: bool = True
    rls_retry: float = 600.0  # seconds of per-contact fallback before the list is tried again


@dataclass
class Watched:
    """One contact's button: its presence, its dialog override, its subscriptions."""

    name: str
    uri: str
    presence: ContactPresence = field(default_factory=lambda: ContactPresence(ContactState.UNKNOWN))
    dialog: ContactState | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    blf: bool = False

    @property
    def view(self) -> ContactPresence:
        return shown(self.presence, self.dialog)


class PresencePlugin:
    """Registered with the plugin host by `create_plugin`."""

    def __init__(self, settings: PresenceSettings) -> None:
        self.settings = settings
        self.phone: PhoneApi | None = None  # set at phone_started
        self.watched: dict[str, Watched] = {}
        self._list: Subscription | None = None  # the RLS subscription
        self._by_list = False  # registered with `rls_uri`: the list watches the contacts
        self._list_timer: asyncio.TimerHandle | None = None
        self._list_failures = 0  # lists that answered 2xx and never notified, in a row
        self._list_generation = 0  # the NOTIFYs of a list we gave up on are ignored
        self._list_seen: Notification | None = None  # its latest readable NOTIFY
        self._winfo: Subscription | None = None
        self._presence_pub: Publication | None = None
        self._dialog_pub: Publication | None = None
        self._dialog_version = 0
        self._registered = False
        self._not_listed: set[str] = set()
        self._rls_uri = settings.rls_uri  # the config's, until a plugin shares another
        self.pending_watchers = 0

    @property
    def _api(self) -> PhoneApi:
        """The phone, for the subscriptions' callbacks: they exist only once
        `phone_started` set it."""
        assert self.phone is not None, "presence callback before phone_started"
        return self.phone

    # -- hooks ------------------------------------------------------------
    @hookimpl
    def phone_started(self, phone: PhoneApi) -> None:
        self.phone = phone
        if phone.account.direct:
            log.info("presence: direct mode, watching each contact at its own address")
            self._publish_presence(phone)
            self._sync(phone.contacts())
            return
        aor = phone.account.aor
        if self._rls_uri is not None:
            self._by_list = True
            self._subscribe_list(phone, self._rls_uri)
        if self.settings.watchers:
            self._winfo = phone.subscribe("presence.winfo", aor, self._on_winfo)
        if self.settings.publish:
            self._presence_pub = phone.publish("presence", pidf.CONTENT_TYPE)
            self._dialog_pub = phone.publish("dialog", dialoginfo.CONTENT_TYPE)
        self._sync(phone.contacts())

    @hookimpl
    def contacts_changed(self, contacts: Sequence[Contact]) -> None:
        if self.phone is not None:
            self._sync(contacts)

    @hookimpl
    def presence_list_changed(self, uri: str | None) -> None:
        """Watch through the RLS list found on the server (see `PhoneApi.set_presence_list`)."""
        if uri is None or uri == self._rls_uri:
            return
        self._rls_uri = uri
        phone = self.phone
        if phone is None or phone.account.direct:
            return  # phone_started takes the list up, where there is a server
        log.info("presence: watching the contacts through list %s", uri)
        if self._list_timer is not None:
            self._list_timer.cancel()
            self._list_timer = None
        if self._list is not None:
            self._list.end()
        if self._list_failures:
            self._list_failures = 0
            phone.set_indicator(LIST_INDICATOR, "")
        self._list_seen = None
        for watched in self.watched.values():
            for subscription in watched.subscriptions:
                subscription.end()
        self.watched.clear()
        self._not_listed.clear()
        self._by_list = True
        self._subscribe_list(phone, uri)
        self._sync(phone.contacts())

    @hookimpl
    def registration_changed(self, registered: bool) -> None:
        if self.phone is not None and registered and not self._registered:
            self._registered = True
            self._publish_presence(self.phone)

    @hookimpl
    def dnd_changed(self, phone: PhoneApi) -> None:
        self._publish_presence(phone)

    @hookimpl
    def call_changed(self, phone: PhoneApi, call: CallInfo) -> None:
        if self.phone is None:
            return
        self._publish_presence(phone)
        if self._dialog_pub is None:
            return
        calls = [c for c in phone.calls() if c.id != call.id]
        self._dialog_version += 1
        self._dialog_pub.publish(
            own.dialog_body(phone.account.aor, self._dialog_version, [*calls, call])
        )

    @hookimpl
    def button_pressed(self, phone: PhoneApi, button: str, long_press: bool) -> bool | None:
        if not long_press or contact_index(button) is None:
            return None
        contact = phone.contact_on(button)
        watched = None if contact is None else self.watched.get(address_key(contact.uri))
        if watched is None:
            return None
        view = watched.view
        lines = [watched.name, LABELS[view.state]]
        if view.note:
            lines.append(view.note)
        phone.show_message(lines, LONG_PRESS_SECONDS)
        return True

    @hookimpl
    def phone_stopping(self, phone: PhoneApi) -> Awaitable[None] | None:
        if self._list_timer is not None:
            self._list_timer.cancel()
            self._list_timer = None
        if phone.account.direct and self.settings.publish:
            self._serve(phone, own.OwnStatus.CLOSED)
            return None
        if self._presence_pub is None or not self._registered:
            return None
        self._presence_pub.publish(own.presence_body(phone.account.aor, own.OwnStatus.CLOSED))
        return self._settled(self._presence_pub)

    # -- watching ----------------------------------------------------------
    @property
    def _each(self) -> bool:
        """Whether every contact has its own presence subscription: without a
        list (none configured, or direct mode), or while the list is in fallback."""
        return not self._by_list or self._list_failures > 0

    def _subscribe_list(self, phone: PhoneApi, uri: str) -> None:
        self._list_generation += 1
        self._list = phone.subscribe(
            "presence",
            uri,
            functools.partial(self._on_list, self._list_generation),
            eventlist=True,
        )
        self._list_timer = asyncio.get_running_loop().call_later(
            LIST_NOTIFY_WAIT_S, self._check_list, phone, uri
        )

    def _check_list(self, phone: PhoneApi, uri: str) -> None:
        """`LIST_NOTIFY_WAIT_S` after a list SUBSCRIBE: give up on a list that
        answered 2xx and sent no NOTIFY, look again while it has no answer, and
        end a fallback once the list delivered readable NOTIFYs."""
        self._list_timer = None
        listed = self._list
        if listed is None:
            return
        if listed.awaiting_notify:
            self._give_up_list(
                phone,
                uri,
                f"accepted but sent no NOTIFY in {LIST_NOTIFY_WAIT_S} s (too long for pjsip?)",
            )
        elif listed.state in (SubscriptionState.SUBSCRIBING, SubscriptionState.RETRYING):
            self._list_timer = asyncio.get_running_loop().call_later(
                LIST_NOTIFY_WAIT_S, self._check_list, phone, uri
            )
        elif self._list_failures and self._list_seen is not None:
            self._list_failures = 0
            for watched in self.watched.values():
                for subscription in [s for s in watched.subscriptions if s.event == "presence"]:
                    subscription.end()
                    watched.subscriptions.remove(subscription)
            log.info("presence: list %s delivers again, one subscription for all", uri)
            phone.set_indicator(LIST_INDICATOR, "")
            phone.redraw()
            self._show_list(self._list_seen)

    def _give_up_list(self, phone: PhoneApi, uri: str, why: str) -> None:
        """Watch each contact on its own; the list again in `rls_retry` seconds."""
        if self._list_timer is not None:
            self._list_timer.cancel()
        if self._list is not None:
            self._list.end()
        self._list = None
        self._list_seen = None
        self._list_failures += 1
        if self._list_failures == 1:
            log.warning(
                "presence: list %s %s: one subscription per contact, the list again in %.0f s",
                uri,
                why,
                self.settings.rls_retry,
            )
            phone.set_indicator(LIST_INDICATOR, LIST_FALLBACK_TEXT)
            phone.redraw()
            for key, watched in self.watched.items():
                watched.subscriptions.append(self._subscribe_presence(key, watched.uri))
        self._list_timer = asyncio.get_running_loop().call_later(
            self.settings.rls_retry, self._subscribe_list, phone, uri
        )

    def _subscribe_presence(self, key: str, uri: str) -> Subscription:
        return self._api.subscribe(
            "presence",
            uri,
            functools.partial(self._on_presence, key),
            on_end=functools.partial(self._on_end, key),
        )

    def _sync(self, contacts: Sequence[Contact]) -> None:
        """Subscribe for new contacts, end the subscriptions of removed ones.
        Conference rooms are not watched: a focus has no presence to give, and
        its refusal (489) would be logged at every start."""
        wanted = {address_key(c.uri): c for c in contacts if not c.conference}
        for key in list(self.watched):
            if key not in wanted:
                for subscription in self.watched.pop(key).subscriptions:
                    subscription.end()
                log.info("presence: stopped watching %s", key)
        for key, contact in wanted.items():
            watched = self.watched.get(key)
            if watched is not None and watched.blf == contact.blf:
                watched.name = contact.name
                continue
            if watched is not None:
                for subscription in watched.subscriptions:
                    subscription.end()
            watched = Watched(contact.name, contact.uri, blf=contact.blf)
            self.watched[key] = watched
            if self._each:
                watched.subscriptions.append(self._subscribe_presence(key, contact.uri))
            if contact.blf:
                watched.subscriptions.append(
                    self._api.subscribe(
                        "dialog", contact.uri, functools.partial(self._on_dialog, key)
                    )
                )
            self._show(watched, None)

    def _on_presence(self, key: str, notification: Notification) -> None:
        watched = self.watched.get(key)
        if watched is None:
            return
        presence = self._read(watched, notification)
        if presence is not None:
            watched.presence = presence
        self._show(watched, notification.received_ns)

    def _read(self, watched: Watched, notification: Notification) -> ContactPresence | None:
        """The presence one NOTIFY tells, or None when it tells nothing new."""
        if notification.error is not None:  # logged by the subscription
            return ContactPresence(ContactState.UNKNOWN)
        if notification.state is SubscriptionState.PENDING:
            return ContactPresence(ContactState.PENDING)
        if isinstance(notification.document, pidf.Presence):
            return from_presence(notification.document)
        if notification.state is SubscriptionState.TERMINATED:
            return None  # the subscription renews itself or ends (on_end)
        return ContactPresence(ContactState.OFFLINE)  # no body: nothing published

    def _on_end(self, key: str, ended: SubscriptionEnded) -> None:
        watched = self.watched.get(key)
        if watched is not None and ended.reason != "ended":
            log.warning("presence: watching %s refused (%s)", watched.uri, ended.reason)
            watched.presence = ContactPresence(ContactState.UNKNOWN)
            self._show(watched, None)

    def _on_list(self, generation: int, notification: Notification) -> None:
        if self._list is None or generation != self._list_generation:
            return  # the terminating NOTIFY of a list we gave up on
        if notification.error is not None:  # logged by the subscription
            # Over UDP a NOTIFY longer than pjsip's buffer arrives cut short.
            assert self.settings.rls_uri is not None
            self._give_up_list(
                self._api,
                self.settings.rls_uri,
                f"sent an unreadable NOTIFY ({notification.error})",
            )
            return
        if not isinstance(notification.merged, ListView):
            return
        self._list_seen = notification
        if not self._list_failures:  # in fallback the contacts' own subscriptions show
            self._show_list(notification)

    def _show_list(self, notification: Notification) -> None:
        view = notification.merged
        assert isinstance(view, ListView)
        resources = {address_key(r.uri): r for r in view.resources}
        for key, watched in self.watched.items():
            resource = resources.get(key)
            if resource is None:
                if key not in self._not_listed:
                    self._not_listed.add(key)
                    log.info("presence: %s is not in list %s", watched.uri, notification.target)
                presence = ContactPresence(ContactState.UNKNOWN)
            else:
                states = {i.state for i in resource.instances}
                document = view.presence(resource.uri)
                if InstanceState.ACTIVE in states:
                    presence = (
                        from_presence(document)
                        if document is not None
                        else ContactPresence(ContactState.OFFLINE)
                    )
                elif InstanceState.PENDING in states:
                    presence = ContactPresence(ContactState.PENDING)
                else:
                    presence = ContactPresence(ContactState.UNKNOWN)
            if presence != watched.presence:
                watched.presence = presence
                self._show(watched, notification.received_ns)
        if notification.document is not None and notification.document.list.full_state:
            log.info(
                "presence: list %s full state, %d resources, %d with presence, shown in %.1f ms",
                notification.target,
                len(view.resources),
                sum(1 for r in view.resources if view.presence(r.uri) is not None),
                (time.perf_counter_ns() - notification.received_ns) / 1e6,
            )

    def _on_dialog(self, key: str, notification: Notification) -> None:
        watched = self.watched.get(key)
        if watched is None:
            return
        if notification.error is not None or notification.state is SubscriptionState.TERMINATED:
            watched.dialog = None  # an unreadable body is logged by the subscription
        elif isinstance(notification.merged, dialoginfo.DialogInfo):
            watched.dialog = from_dialogs(notification.merged)
        self._show(watched, notification.received_ns)

    def _on_winfo(self, notification: Notification) -> None:
        if not isinstance(notification.merged, WatcherInfo):
            return
        count = len({w.uri for w in notification.merged.pending})
        if count != self.pending_watchers:
            log.info("presence: %d watchers wait for authorization", count)
        self.pending_watchers = count
        self._api.set_indicator(INDICATOR, f"W:{count}" if count else "")
        self._api.redraw()

    def _show(self, watched: Watched, received_ns: int | None) -> None:
        view = watched.view
        led = self.settings.leds[view.state]
        before = self._api.led_for(watched.uri)
        self._api.set_led(watched.uri, led, LAYER)
        if received_ns is not None:
            # The NOTIFY's arrival (perf_counter_ns, CLOCK_MONOTONIC) is kept so
            # bench/presence.py can split the server's time from ours.
            log.debug(
                "presence: %s %s, LED %s %s; NOTIFY at %d ns, LED %.3f ms later",
                watched.uri,
                view.state,
                led.color,
                led.pattern,
                received_ns,
                (time.perf_counter_ns() - received_ns) / 1e6,
            )
        if before != self._api.led_for(watched.uri):
            log.info("presence: %s is %s", watched.name, view.state)

    # -- publishing --------------------------------------------------------
    def _publish_presence(self, phone: PhoneApi) -> None:
        if phone.account.direct and self.settings.publish:
            self._serve(phone, own.own_status(phone.dnd, phone.calls()))
            return
        if self._presence_pub is None or not self._registered:
            return
        status = own.own_status(phone.dnd, phone.calls())
        self._presence_pub.publish(own.presence_body(phone.account.aor, status))
        log.info("presence: publishing %s", status)

    @staticmethod
    def _serve(phone: PhoneApi, status: own.OwnStatus) -> None:
        """Direct mode: tell those who watch us directly."""
        terms = own.TERMS[status]
        activity = terms.activities[0] if terms.activities else None
        phone.serve_presence(terms.basic is pidf.BasicStatus.OPEN, activity, terms.note)
        log.info("presence: serving %s to direct watchers", status)

    @staticmethod
    async def _settled(publication: Publication) -> None:
        deadline = time.monotonic() + STOP_WAIT_S
        while not publication.settled and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
