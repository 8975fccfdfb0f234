"""The XCAP plugin object: contacts from the server, presence authorization here.

Contacts: the resource-lists document is read at start (conditionally, with
the cached ETag), its list becomes the "xcap" contact source, and changes are
followed through an xcap-diff subscription (RFC 5875) where the server keeps
one, and by a conditional GET every `refresh_s` in any case (see `_run`). A failing server leaves the
cache and the buttons as they were; the footer shows "offline" until it
answers. The user's rls-services document, where there is one, names the RLS
URI the presence plugin then watches (`PhoneApi.set_presence_list`).

Authorization: pending watchers of our presence (RFC 3857/3858) are shown one
at a time; `answer` writes `allow` for the watcher into pres-rules (RFC 5025),
`end` writes `block` (or `polite-block`), each with If-Match and re-applied on
412 (`XcapClient.modify`). A long press on a watcher's contact button asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from phone.api import (
    Contact,
    Notification,
    PhoneApi,
    Subscription,
    SubscriptionEnded,
    address_key,
    contact_index,
)
from phone.hookspecs import hookimpl
from phone.payloads import resourcelists
from phone.payloads.error import PayloadError
from phone.payloads.presrules import (
    FULL_PRESENCE,
    Conditions,
    One,
    PresRules,
    Rule,
    SubHandling,
    decide,
)
from phone.payloads.watcherinfo import WatcherInfo
from phone.payloads.xcapdiff import XcapDiff
from phone.uri import parse_sip_uri
from phone.xcap.applications import PRES_RULES, RESOURCE_LISTS, RLS_SERVICES
from phone.xcap.client import Document, XcapClient, XcapResource
from phone.xcap.contacts import list_contacts
from phone.xcap.discovery import discover_root
from phone.xcap.errors import XcapError, XcapNotFound, XcapUnreachable
from plugins.xcap.cache import MIGRATIONS, DocumentCache
from plugins.xcap.watchers import WatcherRecord, Watchers

log = logging.getLogger(__name__)

SOURCE = "xcap"
INDICATOR = "xcap"
CONTACTS_RULE_ID = "simplephone_contacts"
PROMPT_S = 30.0
RETRY_S = 30.0  # after a failure (each request has already retried, backing off)


@dataclass(frozen=True)
class XcapSettings:
    root: str | None  # None: looked up from the account's domain
    username: str | None = None
    password: str | None = None
    document: str = "index"
    list_name: str | None = None
    refresh_s: int = 300
    deny: SubHandling = SubHandling.BLOCK
    allow_contacts: bool = True


def _label(uri: str, name: str | None) -> str:
    if name:
        return name
    try:
        return parse_sip_uri(uri).user or uri
    except ValueError:
        return uri


def _report(task: asyncio.Task[None]) -> None:
    """A bug in the plugin's task ends it with one logged traceback; the phone goes on."""
    if not task.cancelled() and task.exception() is not None:
        log.error("xcap: stopped following the server", exc_info=task.exception())


class XcapPlugin:
    """Registered with the plugin host by `create_plugin`."""

    def __init__(self, settings: XcapSettings) -> None:
        self.settings = settings
        self.phone: PhoneApi | None = None
        self.client: XcapClient | None = None
        self.cache: DocumentCache | None = None
        self.lists: Document[resourcelists.ResourceLists] | None = None
        self.state = "offline"
        self.watchers = Watchers()
        self.prompt: WatcherRecord | None = None  # the watcher on the screen
        self._prompt_until = 0.0
        self._ours: set[str] = set()  # the address keys of the contacts we wrote
        self._diff: Subscription | None = None
        self._diff_active = False
        self._winfo: Subscription | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._rls_uri: str | None = None
        self._names: dict[str, str] = {}  # address key -> contact name, for the prompts

    @property
    def _api(self) -> PhoneApi:
        assert self.phone is not None, "XCAP callback before phone_started"
        return self.phone

    # -- hooks ------------------------------------------------------------
    @hookimpl
    def phone_started(self, phone: PhoneApi) -> None:
        if phone.account.direct:
            log.info("xcap: no registrar (direct mode), no XCAP server")
            return
        self.phone = phone
        self.cache = DocumentCache(phone.tables("xcap", MIGRATIONS))
        if self.settings.root is not None:
            self._connect(self.settings.root)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="xcap")
        self._task.add_done_callback(_report)

    @hookimpl
    def contacts_changed(self, contacts: Sequence[Contact]) -> None:
        self._names = {address_key(c.uri): c.name for c in contacts}

    @hookimpl
    def phone_stopping(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for task in self._writes:
            task.cancel()

    @hookimpl(tryfirst=True)
    def button_pressed(self, phone: PhoneApi, button: str, long_press: bool) -> bool | None:
        """`answer`/`end` while a watcher prompt shows decide; a long press on a
        watcher's contact button asks again."""
        prompt = self.prompt
        if button in ("answer", "end") and prompt is not None and not phone.calls():
            self.prompt = None
            if time.monotonic() < self._prompt_until:
                self._decide(prompt, allow=button == "answer")
                return True
        if long_press and contact_index(button) is not None:
            contact = phone.contact_on(button)
            record = None if contact is None else self.watchers.find(contact.uri)
            if record is not None:
                self._ask(record)
                return True
        return None

    @hookimpl
    def control_state(self) -> Mapping[str, object]:
        if self.client is None:  # no XCAP server (yet): the config's contacts only
            source = {"kind": "config", "state": "synced", "etag": None}
        else:
            etag = None if self.lists is None else self.lists.resource.etag
            source = {"kind": SOURCE, "state": self.state, "etag": etag}
        return {"watchers": self.watchers.state(), "contacts_source": source}

    # -- contacts -----------------------------------------------------------
    def _connect(self, root: str) -> None:
        """The client for `root`, the subscriptions that follow the server, and the
        cached list (for a conditional first read)."""
        phone = self._api
        assert self.cache is not None
        username, password = self._login()
        self.client = XcapClient(root, phone.account.aor, username=username, password=password)
        phone.set_indicator(INDICATOR, self.state)
        self._diff = phone.subscribe(
            "xcap-diff", phone.account.aor, self._on_diff, on_end=self._on_diff_end
        )
        self._winfo = phone.subscribe("presence.winfo", phone.account.aor, self._on_winfo)
        cached = self.cache.load(self.settings.document)
        if cached is None:
            return
        uri = self.client.document(RESOURCE_LISTS.auid, self.settings.document)
        try:
            value = RESOURCE_LISTS.parse(cached.body)
        except PayloadError:
            log.warning("xcap: the cached contact list is unreadable; reading it again")
            return
        self.lists = Document(value, XcapResource(uri, cached.body, cached.etag))
        self._ours = {address_key(c.uri) for c in self._contacts(value)}

    def _login(self) -> tuple[str | None, str | None]:
        """The XCAP user name and password: the settings', else the SIP account's."""
        credentials = self._api.credentials()
        if self.settings.username is not None:
            return self.settings.username, self.settings.password
        if credentials is None:
            return None, None
        return credentials.username, credentials.password

    async def _run(self) -> None:
        """Read the contacts now, then whenever xcap-diff says so and every
        `refresh_s` (a 304 when nothing changed): Kamailio takes xcap-diff
        subscriptions but sends a NOTIFY on a change only when its config asks
        (`pres_refresh_watchers`), so the subscription alone cannot be
        trusted. After a failure, sooner."""
        retry = min(RETRY_S, self.settings.refresh_s)
        if self.client is None:
            username, password = self._login()
            account = self._api.account
            root = await discover_root(
                account.domain, account.aor, username=username, password=password
            )
            if root is None:
                return  # logged; the contacts stay the config's
            self._connect(root)
        first = True
        while True:
            if await self._refresh():
                if first:
                    first = False
                    await self._after_first_sync()
                wait = float(self.settings.refresh_s)
            else:
                wait = retry
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _refresh(self) -> bool:
        """One (conditional) read of the contact list; whether the server answered."""
        assert self.client is not None and self.cache is not None
        started = time.perf_counter()
        try:
            lists = await self.client.fetch(
                RESOURCE_LISTS, self.settings.document, cached=self.lists
            )
        except XcapNotFound:
            self._set_state("synced")
            log.info("xcap: %s has no resource-lists document", self._api.account.aor)
            return True
        except XcapError as exc:  # logged once by the client
            self._set_state("offline" if isinstance(exc, XcapUnreachable) else "error")
            return False
        if lists is not self.lists:
            self.lists = lists
            contacts = self._contacts(lists.value)
            self._replace(contacts)
            self.cache.save(self.settings.document, lists.resource.body, lists.resource.etag)
            log.info(
                "xcap: %d contacts from list %s (ETag %s) on the buttons in %.1f ms",
                len(contacts),
                self.settings.list_name or "(all)",
                lists.resource.etag,
                (time.perf_counter() - started) * 1e3,
            )
        self._set_state("synced")
        return True

    def _contacts(self, document: resourcelists.ResourceLists) -> list[Contact]:
        assert self.client is not None
        found = list_contacts(
            document,
            self.settings.list_name,
            root=self.client.root,
            here=self.client.document(RESOURCE_LISTS.auid, self.settings.document).document,
        )
        if found is None:
            log.warning("xcap: the resource-lists document has no list %s", self.settings.list_name)
            return []
        contacts = []
        for contact in found.contacts:
            try:
                parse_sip_uri(contact.uri)
            except ValueError:
                continue  # tel: or http: entries are not buttons
            contacts.append(Contact(_label(contact.uri, contact.name), contact.uri))
        return contacts

    def _replace(self, contacts: list[Contact]) -> None:
        """The rule: config contacts come first and stay; an XCAP entry with the
        address of a config contact is left out (the config's name wins)."""
        phone = self._api
        pinned = {address_key(c.uri) for c in phone.contacts()} - self._ours
        kept = [c for c in contacts if address_key(c.uri) not in pinned]
        self._ours = {address_key(c.uri) for c in kept}
        phone.replace_contacts(SOURCE, kept)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            log.info("xcap: contacts %s", state)
        self.state = state
        self._api.set_indicator(INDICATOR, "" if state == "synced" else state)
        self._api.redraw()

    async def _after_first_sync(self) -> None:
        """Once the server answers: the RLS URI of rls-services, the first pres-rules."""
        assert self.client is not None
        try:
            services = await self.client.fetch(RLS_SERVICES)
        except XcapNotFound:
            services = None
        except XcapError:
            services = None  # logged by the client; the config's rls_uri stays
        if services is not None:
            found = services.value.for_package("presence")
            uri = found[0].uri if found else None
            if uri != self._rls_uri:
                self._rls_uri = uri
                log.info("xcap: presence list %s from rls-services", uri)
                self._api.set_presence_list(uri)
        if self.settings.allow_contacts:
            await self._first_pres_rules()

    async def _first_pres_rules(self) -> None:
        """With no pres-rules document yet, write one that lets every contact watch."""
        assert self.client is not None
        uris = tuple(One(c.uri) for c in self._api.contacts())

        def first(current: PresRules | None) -> PresRules:
            if current is not None:
                return current
            log.info("xcap: no pres-rules; allowing the %d contacts to watch", len(uris))
            rule = Rule(
                CONTACTS_RULE_ID,
                Conditions(identity=uris),
                SubHandling.ALLOW,
                FULL_PRESENCE,
            )
            return PresRules(rules=(rule,) if uris else ())

        with contextlib.suppress(XcapError):  # logged by the client
            await self.client.modify(PRES_RULES, first)

    def _on_diff(self, notification: Notification) -> None:
        """An xcap-diff NOTIFY: read the contact list again now if it changed."""
        if not self._diff_active:
            log.info("xcap: following changes through xcap-diff")
        self._diff_active = True
        diff = notification.document
        if isinstance(diff, XcapDiff) and not any(
            d.sel.startswith(f"{RESOURCE_LISTS.auid}/") for d in diff.documents
        ):
            return
        self._wake.set()

    def _on_diff_end(self, ended: SubscriptionEnded) -> None:
        if ended.reason != "ended":
            log.info(
                "xcap: no xcap-diff (%s); reading the contacts every %d s",
                ended.reason,
                self.settings.refresh_s,
            )
        self._diff_active = False

    # -- authorization ----------------------------------------------------
    def _on_winfo(self, notification: Notification) -> None:
        if not isinstance(notification.merged, WatcherInfo):
            return
        for record in self.watchers.update(notification.merged):
            log.info("xcap: %s asks to see our presence", record.uri)
            if self.prompt is None:
                self._ask(record, notification.received_ns)

    def _ask(self, record: WatcherRecord, received_ns: int | None = None) -> None:
        self.prompt = record
        self._prompt_until = time.monotonic() + PROMPT_S
        name = self._names.get(address_key(record.uri)) or _label(record.uri, record.name)
        self._api.show_message(
            [f"{name} wants to", "see your presence", "answer=yes end=no"], PROMPT_S
        )
        if received_ns is not None:
            log.debug(
                "xcap: prompt for %s %.3f ms after the NOTIFY",
                record.uri,
                (time.perf_counter_ns() - received_ns) / 1e6,
            )

    def _decide(self, record: WatcherRecord, allow: bool) -> None:
        handling = SubHandling.ALLOW if allow else self.settings.deny
        pressed_ns = time.perf_counter_ns()
        self.watchers.decide(record.uri, allow)
        self._api.show_message([_label(record.uri, record.name), handling.value], 2.0)
        task = asyncio.get_running_loop().create_task(self._write(record.uri, handling, pressed_ns))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        following = next(iter(self.watchers.pending()), None)
        if following is not None:
            self._ask(following)

    async def _write(self, uri: str, handling: SubHandling, pressed_ns: int) -> None:
        assert self.client is not None
        try:
            await self.client.modify(
                PRES_RULES, lambda current: decide(current or PresRules(), uri, handling)
            )
        except XcapError:
            return  # logged by the client
        log.info(
            "xcap: %s %s written (%.1f ms after the press)",
            uri,
            handling.value,
            (time.perf_counter_ns() - pressed_ns) / 1e6,
        )
