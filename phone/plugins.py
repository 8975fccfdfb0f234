"""The plugin host: finds plugins, checks their settings, and calls their hooks
so that one broken plugin cannot take the phone down.

Plugins come from the `simplephone.plugins` entry-point group and from the
`builtins` mapping the caller passes (used when the package itself is not
installed, as in a source checkout). A plugin is enabled unless its
`[plugins.<name>]` table says `enabled = false`; a table naming a plugin that is
not installed is a ConfigError, so a typo does not silently do nothing.

pluggy's own hook call stops at the first exception, so the host walks the
implementations itself, in pluggy's order (last registered first, tryfirst and
trylast respected). A plugin whose hook raises, or whose returned awaitable
raises, is logged once with its traceback and unregistered; it is listed in
`disabled` with the reason, for the screen.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pluggy

from phone import hookspecs
from phone.config import ConfigError, PluginConfig
from phone.hookspecs import PluginUnavailable
from phone.settings import Table
from phone.store import StoreFull

if TYPE_CHECKING:
    from phone.api import PhoneApi

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "simplephone.plugins"
STOP_TIMEOUT_S = 5.0


def _state_keys(answer: object) -> bool:
    """Keys a plugin may add to the control interface's `state` (hook control_state)."""
    if not isinstance(answer, Mapping) or not all(
        isinstance(key, str) and key not in hookspecs.CORE_STATE_KEYS for key in answer
    ):
        return False
    try:
        json.dumps(dict(answer))
    except (TypeError, ValueError):
        return False
    return True


# What each hook that must answer at once may answer besides None (phone.hookspecs), and how
# to say it in a log line.
ANSWERS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "incoming_call": (
        lambda code: type(code) is int and 400 <= code <= 699,
        "a SIP status from 400 to 699",
    ),
    "button_pressed": (lambda handled: handled is True, "True"),
    "control_state": (
        _state_keys,
        "a mapping of new key names (not the core's) to JSON values",
    ),
}


class DisableCause(StrEnum):
    LOAD = "load"  # the module could not be imported
    UNAVAILABLE = "unavailable"  # create_plugin raised PluginUnavailable
    INVALID = "invalid"  # its hooks do not match the specs, or create_plugin crashed
    FAILED = "failed"  # a hook raised while the phone ran


@dataclass(frozen=True)
class DisabledPlugin:
    name: str
    cause: DisableCause
    reason: str  # one line, for the screen and the log


class PluginHost:
    """Loads the enabled plugins (at construction, or later with `register`,
    from what `import_plugins` imported on another thread; raising
    ConfigError for bad settings) and calls their hooks, guarded, on the event
    loop thread. Until they are loaded, hooks are called on no one."""

    def __init__(
        self,
        config_plugins: Mapping[str, PluginConfig] | None = None,
        builtins: Mapping[str, object] | None = None,
        trace: bool = False,
    ) -> None:
        self.trace = trace  # log every hook call and answer at DEBUG
        self.disabled: list[DisabledPlugin] = []
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._tasks: set[asyncio.Task[None]] = set()
        if config_plugins is not None:
            self.register(import_plugins(config_plugins, builtins))

    @property
    def names(self) -> list[str]:
        """The plugins that are registered and running, the latest registered first."""
        return [name for name, _ in reversed(self.pm.list_name_plugin())]

    # -- loading --------------------------------------------------------
    def register(self, imported: list[ImportedPlugin]) -> None:
        """Create and register the plugins `import_plugins` found, on the event
        loop thread, in its order; log each one disabled or not importable."""
        for plugin in imported:
            if not plugin.config.enabled:
                log.info("plugin %s: disabled in the config", plugin.name)
            elif plugin.error is not None:
                error = plugin.error
                reason = f"cannot load: {type(error).__name__}: {error}"
                self._note_disabled(plugin.name, DisableCause.LOAD, reason)
            else:
                self._register_one(plugin.name, plugin.module, plugin.config.settings)

    def _register_one(self, name: str, module: object, settings: dict[str, Any]) -> None:
        create = getattr(module, "create_plugin", None)
        table = Table(f"plugins.{name}", dict(settings))
        plugin = module
        if create is not None:
            try:
                plugin = create(table)
            except ConfigError:
                raise
            except PluginUnavailable as e:
                self._note_disabled(name, DisableCause.UNAVAILABLE, str(e))
                return
            except Exception as e:
                reason = f"create_plugin failed: {type(e).__name__}: {e}"
                self._note_disabled(name, DisableCause.INVALID, reason, e)
                return
            table.finish()  # what the plugin did not read is refused, typos first
        elif settings:
            key = next(iter(settings))
            raise ConfigError(table.key(key), "unknown key (this plugin takes no settings)")
        try:
            self.pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as e:
            # pluggy's message spans lines: which hook, its signature, what is wrong.
            self._note_disabled(name, DisableCause.INVALID, "; ".join(str(e).splitlines()))
            return
        problem = _hook_problem(self.pm, plugin)
        if problem is not None:
            self.pm.unregister(plugin)
            self._note_disabled(name, DisableCause.INVALID, problem)
            return
        log.info("plugin %s: loaded", name)

    def _note_disabled(
        self, name: str, cause: DisableCause, reason: str, error: BaseException | None = None
    ) -> None:
        """One log line (a plugin unavailable here is a warning, anything else an
        error), with the traceback of `error` when there is one."""
        level = logging.WARNING if cause is DisableCause.UNAVAILABLE else logging.ERROR
        log.log(level, "plugin %s disabled: %s", name, reason, exc_info=error)
        self.disabled.append(DisabledPlugin(name, cause, reason))

    # -- calling hooks --------------------------------------------------
    def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation of `hook_name`; return their non-None answers.

        An awaitable answer is run as a task on the running loop instead, guarded
        the same way, and is not part of the list.
        """
        results: list[Any] = []
        for impl in self._implementations(hook_name, kwargs):
            ok, result = self._run(impl, hook_name, kwargs)
            if not ok or result is None:
                continue
            if inspect.isawaitable(result):
                self._spawn(impl, hook_name, result)
            else:
                results.append(result)
        return results

    def call_first(self, hook_name: str, **kwargs: Any) -> Any:
        """Call the implementations of a firstresult hook until one answers.

        None and False are no answer: the next plugin is asked. An answer the
        hook does not allow (see `ANSWERS`) disables the plugin that gave it,
        so the core only ever sees a valid one.
        """
        for impl in self._implementations(hook_name, kwargs):
            ok, result = self._run(impl, hook_name, kwargs)
            answered = ok and result is not None and result is not False
            if answered and self._allowed(impl, hook_name, result):
                return result
        return None

    def collect(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation of a hook that must answer at once; their
        answers (None is no answer). An answer the hook does not allow (see
        `ANSWERS`), or an awaitable, disables the plugin that gave it."""
        answers = []
        for impl in self._implementations(hook_name, kwargs):
            ok, result = self._run(impl, hook_name, kwargs)
            if ok and result is not None and self._allowed(impl, hook_name, result):
                answers.append(result)
        return answers

    def _allowed(self, impl: pluggy.HookImpl, hook_name: str, result: object) -> bool:
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            self._disable(impl, f"{hook_name} must answer at once, it returned an awaitable")
            return False
        allowed = ANSWERS.get(hook_name)
        if allowed is not None and not allowed[0](result):
            self._disable(impl, f"{hook_name} answered {result!r}, not {allowed[1]}")
            return False
        return True

    async def stop(self, phone: PhoneApi, timeout: float = STOP_TIMEOUT_S) -> None:
        """Call `phone_stopping`, wait up to `timeout` seconds for the plugins'
        tasks, then cancel what is still running."""
        self.call("phone_stopping", phone=phone)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                log.warning(
                    "plugin task %s still running after %.1fs: cancelled", task.get_name(), timeout
                )
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _implementations(self, hook_name: str, kwargs: dict[str, Any]) -> list[pluggy.HookImpl]:
        caller = getattr(self.pm.hook, hook_name, None)
        if caller is None or caller.spec is None:
            raise AttributeError(f"no hook named {hook_name!r}")
        expected = set(caller.spec.argnames)
        if set(kwargs) != expected:
            raise TypeError(f"hook {hook_name} takes {sorted(expected)}, got {sorted(kwargs)}")
        # get_hookimpls() is in ascending priority; pluggy calls the last first.
        return list(reversed(caller.get_hookimpls()))

    def _run(
        self, impl: pluggy.HookImpl, hook_name: str, kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        try:
            result = impl.function(*(kwargs[arg] for arg in impl.argnames))
        except StoreFull as e:  # the disk's fault, not the plugin's: it stays
            log.info("hook %s of plugin %s: not saved (%s)", hook_name, impl.plugin_name, e)
            return False, None
        except Exception as e:
            self._disable(impl, f"{hook_name} raised {type(e).__name__}: {e}", e)
            return False, None
        if self.trace:
            log.debug("hook %s -> %s: %r", hook_name, impl.plugin_name, result)
        return True, result

    def _spawn(self, impl: pluggy.HookImpl, hook_name: str, awaitable: Awaitable[Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # The core broke the contract (hooks run on the loop thread), not the plugin.
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise RuntimeError(
                f"hook {hook_name} called outside the event loop, "
                f"and plugin {impl.plugin_name} returned an awaitable"
            ) from None
        task = loop.create_task(
            self._await(impl, hook_name, awaitable), name=f"{impl.plugin_name}.{hook_name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _await(
        self, impl: pluggy.HookImpl, hook_name: str, awaitable: Awaitable[Any]
    ) -> None:
        try:
            result = await awaitable
        except StoreFull as e:
            log.info("hook %s task of plugin %s: not saved (%s)", hook_name, impl.plugin_name, e)
            return
        except Exception as e:
            self._disable(impl, f"{hook_name} task raised {type(e).__name__}: {e}", e)
            return
        if self.trace:
            log.debug("hook %s -> %s task done: %r", hook_name, impl.plugin_name, result)

    def _disable(
        self, impl: pluggy.HookImpl, reason: str, error: BaseException | None = None
    ) -> None:
        """Unregister the plugin behind `impl`. A plugin already disabled (a task
        of it failing late) is not listed twice, but its error is still logged."""
        if not self.pm.is_registered(impl.plugin):
            log.error("plugin %s (disabled): %s", impl.plugin_name, reason, exc_info=error)
            return
        self.pm.unregister(impl.plugin)
        self._note_disabled(impl.plugin_name, DisableCause.FAILED, reason, error)


@dataclass(frozen=True)
class ImportedPlugin:
    """A plugin found by `import_plugins`: its module, or why it could not be imported."""

    name: str
    config: PluginConfig
    module: object = None  # None when disabled in the config, or not importable
    error: Exception | None = None


def import_plugins(
    config_plugins: Mapping[str, PluginConfig],
    builtins: Mapping[str, object] | None = None,
) -> list[ImportedPlugin]:
    """Find the installed plugins (ConfigError for a table that names none of
    them) and import the enabled ones' modules, in registration order. It
    touches no host, so it may run on a worker thread: `Phone.start` imports
    them so (tens of ms), while the loop answers pjsip and the control
    interface; `PluginHost.register` then creates and registers them on the loop."""
    loaders = _discover(builtins or {})
    for name in config_plugins:
        if name not in loaders and config_plugins[name].enabled:
            installed = ", ".join(sorted(loaders)) or "none"
            raise ConfigError(
                f"plugins.{name}", f"no such plugin is installed (installed: {installed})"
            )
    found = []
    for name, load in loaders.items():
        config = config_plugins.get(name, PluginConfig())
        if not config.enabled:
            found.append(ImportedPlugin(name, config))
            continue
        try:
            found.append(ImportedPlugin(name, config, module=load()))
        except Exception as e:  # a plugin that cannot be imported is skipped, not fatal
            found.append(ImportedPlugin(name, config, error=e))
    return found


def _discover(builtins: Mapping[str, object]) -> dict[str, Callable[[], object]]:
    """Loaders by plugin name, in registration order: the builtins, then the
    entry points by name (the first of a name wins)."""
    loaders: dict[str, Callable[[], object]] = {
        name: functools.partial(_identity, module) for name, module in builtins.items()
    }
    import importlib.metadata  # tens of ms: not before the first REGISTER (Phone.start)

    values: dict[str, str] = {}
    entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for entry_point in sorted(entry_points, key=lambda ep: ep.name):
        name = entry_point.name
        if name in values and values[name] != entry_point.value:
            log.warning(
                "plugin %s: two entry points (%s, %s), using the first",
                name,
                values[name],
                entry_point.value,
            )
        if name in loaders:
            continue
        loaders[name] = entry_point.load
        values[name] = entry_point.value
    return loaders


def _identity(module: object) -> object:
    return module


def _hook_problem(pm: pluggy.PluginManager, plugin: object) -> str | None:
    """Why a registered plugin's hooks are not usable here, or None."""
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.spec is None:
            return f"implements {caller.name}, which is not a simplephone hook"
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper):
                return f"{caller.name} is a hook wrapper, which simplephone does not support"
    return None
