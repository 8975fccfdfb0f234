"""The hooks of simplephone's plugin API, in one file.

A plugin is a module found through the `simplephone.plugins` entry-point group
(the guide, plugins/README.md, says how to write, ship and test one). It
implements some of the hooks below with functions marked `@hookimpl`, named
like the hook and taking any subset of the hook's arguments, by name. Every
hook's `phone` is a `phone.api.PhoneApi`: what a plugin may do with the phone.

Settings: a plugin's `[plugins.<name>]` config table (minus `enabled`) is its
own. A plugin that takes settings defines, at module level::

    def create_plugin(settings: phone.settings.Table) -> object

which reads its settings with the table's typed readers
(`settings.integer("max_entries", 1, 100_000, 500)`; `text`, `boolean`,
`choice`, `uri`, `texts`, `table`) and returns the object whose `@hookimpl`
methods are registered instead of the module. Errors name the full key
(`plugins.<name>.max_entries: must be an integer from 1 to 100000, got 0`); a
check of the plugin's own raises `ConfigError(settings.key("max_entries"),
"...")`. Keys it did not read are refused once it returns, with a "did you
mean". It is called when the host loads the plugin (by `phone check-config` and
at start), so it must not start anything: hooks do that. A plugin that cannot
run on this machine (a missing library, absent hardware) raises
`PluginUnavailable("one sentence why")` from `create_plugin`: it is then
disabled, not fatal. A plugin without `create_plugin` takes no settings.

Every hook is called on the event loop thread, never from pjsua2's or a board's
threads, so hooks may use `phone` freely but must not block: do I/O
by returning an awaitable (a coroutine), which the host runs as a task. A hook
that raises, or whose awaitable raises, gets its plugin disabled (logged once
with the traceback) and the phone and the other plugins carry on.

Implementations run in pluggy's order: the most recently registered first,
`tryfirst`/`trylast` respected. Hook wrappers are not supported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

from phone.config import ConfigError

if TYPE_CHECKING:
    from phone.api import CallInfo, Contact, PhoneApi

PROJECT = "simplephone"

# The keys of the control interface's `state` answer that are the core's (README).
CORE_STATE_KEYS = frozenset(
    {"ok", "started", "registered", "buttons", "screen", "calls", "dnd", "muted", "volume"}
    | {"sound"}
    | {"registration", "subscriptions", "plugins", "refused", "call_slots", "uptime_s"}
)

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "ConfigError", "PluginUnavailable", "hookimpl", "hookspec"]


class PluginUnavailable(Exception):
    """Raised by `create_plugin` when the plugin cannot run here; the message,
    one sentence, is shown to the user and the plugin is left disabled."""


@hookspec
def phone_started(phone: PhoneApi) -> Awaitable[None] | None:
    """The phone is up: the board is started and the SIP stack runs
    (registration may still be pending; see `registration_changed`).

    Called once. May return an awaitable, which runs as a task.
    """


@hookspec
def phone_stopping(phone: PhoneApi) -> Awaitable[None] | None:
    """The phone is about to stop, before it unregisters.

    Called once. May return an awaitable: the core waits for all of them, up to
    a few seconds, then cancels what is left.
    """


@hookspec
def registration_changed(
    phone: PhoneApi, registered: bool, code: int, reason: str
) -> Awaitable[None] | None:
    """A REGISTER transaction ended (RFC 3261 §10): `registered` tells whether
    the account is now registered, `code` and `reason` are the final response
    (200 OK, 401/403 on bad credentials, 408 when the registrar is unreachable).

    Also called on refresh failures and on unregistering. May return an awaitable.
    """


@hookspec
def call_changed(phone: PhoneApi, call: CallInfo) -> Awaitable[None] | None:
    """A call changed state. `call` is a snapshot (phone.api.CallInfo) with
    `id`, `remote_uri`, `remote_name`, `direction` ('in' or 'out'), `state`
    ('calling', 'ringing', 'early', 'confirmed', 'disconnected'), `started_at`,
    `connected_at`, `ended_at` (time.time() or None), and `code`, `reason` of
    the last response.

    'disconnected' is the last call for a call. May return an awaitable.
    """


@hookspec(firstresult=True)
def incoming_call(phone: PhoneApi, call: CallInfo) -> int | None:
    """A call arrives, before it rings.

    Return a SIP status code from 400 to 699 (e.g. 486 Busy Here for
    do-not-disturb) to refuse it with, or None to let it ring. The first code
    wins. Must answer at once: an awaitable, or any other answer, disables the
    plugin.
    """


@hookspec(firstresult=True)
def button_pressed(phone: PhoneApi, button: str, long_press: bool) -> bool | None:
    """A button was pressed and released. `button` is `contact-N` (1-based) or a
    function button (`end`, `answer`, `page`, ...; see phone.board), `long_press`
    whether it was held past `calls.long_press_ms`. `conference` is there for a
    conference plugin: the core does nothing with it.

    Return True when the plugin handled the press: the core then does nothing
    more with it. None (or False) lets the next plugin, then the core, act.
    Must answer at once: an awaitable, or any other answer, disables the plugin.
    """


@hookspec
def contacts_changed(phone: PhoneApi, contacts: Sequence[Contact]) -> Awaitable[None] | None:
    """The contact list changed (config loaded, XCAP update). `contacts` is the
    new list in button order (`phone.api.Contact`: `name`, `uri`, `blf`).

    May return an awaitable."""


@hookspec
def presence_list_changed(phone: PhoneApi, uri: str | None) -> None:
    """A plugin found the RLS URI (RFC 4662) to watch every contact's presence
    with, e.g. the XCAP plugin in the user's rls-services document (RFC 4826),
    and said so with `phone.set_presence_list`; None: there is none any more.
    A presence plugin switches to it, over any URI its own settings name."""


@hookspec
def dnd_changed(phone: PhoneApi, on: bool) -> Awaitable[None] | None:
    """Do-not-disturb was switched on or off (the `dnd` button, or a plugin calling
    `phone.set_dnd`). While it is on the core refuses incoming calls with
    `calls.reject_code`; a presence plugin publishes it. May return an awaitable.
    """


@hookspec
def control_state(phone: PhoneApi) -> Mapping[str, object] | None:
    """The control interface is answering `state`: return this plugin's keys to
    add to it (JSON values, e.g. `{"watchers": [...]}`), or None. A key the
    core answers (`CORE_STATE_KEYS`) disables the plugin; between plugins the
    one called first keeps a key, so name keys after what they hold. Must
    answer at once: an awaitable disables the plugin.
    """
