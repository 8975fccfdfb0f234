"""The plugin host with real entry points, and the built-in call-log plugin.

Plugins are real modules in a temporary directory, announced by a real
`*.dist-info/entry_points.txt` on sys.path, so discovery goes through
importlib.metadata exactly as for a pip-installed plugin.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import plugins.call_log as call_log
from phone.calls import CallInfo, CallState, Direction
from phone.config import ConfigError, PluginConfig
from phone.plugins import ENTRY_POINT_GROUP, DisableCause, PluginHost
from phone.store import PluginTables, Store

HEADER = "from phone.hookspecs import hookimpl\nCALLS = []\n"

RECORDER = """
@hookimpl
def call_changed(phone, call):
    CALLS.append(("call_changed", call))

@hookimpl
def registration_changed(registered, code):
    CALLS.append(("registration_changed", registered, code))
    return "recorded"

@hookimpl
def button_pressed(button):
    CALLS.append(("button_pressed", button))
    return None
"""

BOOM = """
@hookimpl
def call_changed(call):
    CALLS.append(("call_changed", call))
    raise RuntimeError("boom on call " + str(call))
"""


class Site:
    """A directory on sys.path where each test plugin is its own distribution
    with an entry point, as `pip install` would leave it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.modules: list[str] = []
        # Plugins installed for real (the built-in call_log, say) stay out of
        # these tests unless a test asks for them.
        self.others = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}

    def install(self, sources: dict[str, str]) -> None:
        for name, source in sources.items():
            module = f"sp_test_{name}"
            (self.path / f"{module}.py").write_text(HEADER + textwrap.dedent(source))
            dist = self.path / f"sp_test_{name}-0.1.dist-info"
            dist.mkdir()
            (dist / "METADATA").write_text(
                f"Metadata-Version: 2.1\nName: sp-test-{name}\nVersion: 0.1\n"
            )
            (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {module}\n")
            self.modules.append(module)

    def host(self, config: dict[str, PluginConfig] | None = None, **kwargs: Any) -> PluginHost:
        off = {name: PluginConfig(enabled=False) for name in self.others}
        return PluginHost({**off, **(config or {})}, **kwargs)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    (tmp_path / "site").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    site = Site(tmp_path / "site")
    yield site
    for module in site.modules:
        sys.modules.pop(module, None)


def plugin_module(name: str) -> ModuleType:
    return sys.modules[f"sp_test_{name}"]


def test_entry_point_plugin_is_discovered_and_called(site: Site) -> None:
    site.install({"recorder": RECORDER})
    host = site.host({})
    assert "recorder" in host.names
    answers = host.call("registration_changed", phone=None, registered=True, code=200, reason="OK")
    assert answers == ["recorded"]
    assert plugin_module("recorder").CALLS == [("registration_changed", True, 200)]
    assert host.disabled == []


def test_raising_plugin_is_disabled_and_the_other_keeps_working(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site.install({"recorder": RECORDER, "boom": BOOM})
    host = site.host({})
    with caplog.at_level(logging.ERROR, logger="phone.plugins"):
        host.call("call_changed", phone=None, call=1)
        host.call("call_changed", phone=None, call=2)
    assert plugin_module("recorder").CALLS == [("call_changed", 1), ("call_changed", 2)]
    assert plugin_module("boom").CALLS == [("call_changed", 1)]
    assert "boom" not in host.names
    [disabled] = host.disabled
    assert (disabled.name, disabled.cause) == ("boom", DisableCause.FAILED)
    assert disabled.reason == "call_changed raised RuntimeError: boom on call 1"
    [record] = caplog.records
    assert (
        record.getMessage()
        == "plugin boom disabled: call_changed raised RuntimeError: boom on call 1"
    )
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError


def test_async_hook_that_raises_disables_its_plugin(site: Site) -> None:
    site.install(
        {
            "slow_ok": """
                import asyncio
                @hookimpl
                def phone_started(phone):
                    async def work():
                        await asyncio.sleep(0.01)
                        CALLS.append("started")
                    return work()
                """,
            "slow_boom": """
                @hookimpl
                def phone_started(phone):
                    async def work():
                        raise ValueError("no network")
                    return work()
                @hookimpl
                def call_changed(call):
                    CALLS.append(call)
                """,
        }
    )

    async def scenario() -> PluginHost:
        host = site.host({})
        assert host.call("phone_started", phone=None) == []
        await host.stop(phone=None, timeout=2.0)
        host.call("call_changed", phone=None, call=7)
        return host

    host = asyncio.run(scenario())
    assert plugin_module("slow_ok").CALLS == ["started"]
    assert plugin_module("slow_boom").CALLS == []
    [disabled] = host.disabled
    assert disabled.name == "slow_boom"
    assert disabled.reason == "phone_started task raised ValueError: no network"


def test_stop_waits_for_phone_stopping_and_cancels_stragglers(site: Site) -> None:
    site.install(
        {
            "tidy": """
                import asyncio
                @hookimpl
                def phone_started(phone):
                    async def forever():
                        try:
                            await asyncio.sleep(3600)
                        except asyncio.CancelledError:
                            CALLS.append("cancelled")
                            raise
                    return forever()
                @hookimpl
                def phone_stopping(phone):
                    async def goodbye():
                        await asyncio.sleep(0.01)
                        CALLS.append("goodbye")
                    return goodbye()
                """,
        }
    )

    async def scenario() -> PluginHost:
        host = site.host({})
        host.call("phone_started", phone=None)
        await host.stop(phone=None, timeout=0.5)
        return host

    host = asyncio.run(scenario())
    assert sorted(plugin_module("tidy").CALLS) == ["cancelled", "goodbye"]
    assert host.disabled == []


def test_plugin_disabled_in_config_is_not_even_imported(site: Site) -> None:
    site.install({"recorder": RECORDER, "boom": BOOM})
    host = site.host({"boom": PluginConfig(enabled=False)})
    assert "boom" not in host.names and "recorder" in host.names
    assert "sp_test_boom" not in sys.modules
    assert host.disabled == []


def test_import_error_disables_only_that_plugin(site: Site) -> None:
    site.install({"recorder": RECORDER, "broken": "import simplephone_no_such_module\n"})
    host = site.host({})
    assert "recorder" in host.names
    [disabled] = host.disabled
    assert (disabled.name, disabled.cause) == ("broken", DisableCause.LOAD)
    assert (
        disabled.reason
        == "cannot load: ModuleNotFoundError: No module named 'simplephone_no_such_module'"
    )


SETTINGS_PLUGIN = """
from phone.hookspecs import ConfigError, PluginUnavailable

class Greeter:
    def __init__(self, greeting):
        self.greeting = greeting
    @hookimpl
    def registration_changed(self, registered):
        return self.greeting if registered else None

def create_plugin(settings):
    greeting = settings.text("greeting", "hello")
    if greeting != greeting.strip():
        raise ConfigError(settings.key("greeting"), "must not start or end with a space")
    if settings.boolean("unavailable", False):
        raise PluginUnavailable("no greeting hardware on this board")
    return Greeter(greeting)
"""


def test_plugin_settings_reach_the_plugin_object(site: Site) -> None:
    site.install({"greeter": SETTINGS_PLUGIN})
    host = site.host({"greeter": PluginConfig(True, {"greeting": "hi"})})
    assert host.call(
        "registration_changed", phone=None, registered=True, code=200, reason="OK"
    ) == ["hi"]


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("greeter", {"greeting": 5}, "plugins.greeter.greeting: must be a string, got 5"),
        (
            "greeter",
            {"greeting": "hi "},
            "plugins.greeter.greeting: must not start or end with a space",
        ),
        (
            "greeter",
            {"greting": "hi"},
            "plugins.greeter.greting: unknown key (did you mean 'greeting'?)",
        ),
        (
            "greeter",
            {"colour": "red"},
            "plugins.greeter.colour: unknown key (keys: greeting, unavailable)",
        ),
        (
            "recorder",
            {"colour": "red"},
            "plugins.recorder.colour: unknown key (this plugin takes no settings)",
        ),
        (
            "absent",
            {},
            "plugins.absent: no such plugin is installed (installed: ",
        ),
    ],
)
def test_bad_plugin_settings_are_config_errors(
    site: Site, name: str, settings: dict[str, Any], message: str
) -> None:
    site.install({"greeter": SETTINGS_PLUGIN, "recorder": RECORDER})
    with pytest.raises(ConfigError) as caught:
        site.host({name: PluginConfig(True, settings)})
    assert str(caught.value).startswith(message)


def test_unavailable_plugin_is_disabled_not_fatal(site: Site) -> None:
    site.install({"greeter": SETTINGS_PLUGIN})
    host = site.host({"greeter": PluginConfig(True, {"unavailable": True})})
    [disabled] = host.disabled
    assert disabled.cause is DisableCause.UNAVAILABLE
    assert disabled.reason == "no greeting hardware on this board"


def test_absent_plugin_switched_off_is_fine(site: Site) -> None:
    site.install({"recorder": RECORDER})
    assert "recorder" in site.host({"absent": PluginConfig(enabled=False)}).names


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (
            "@hookimpl\ndef ring_louder(phone):\n    pass\n",
            "implements ring_louder, which is not a simplephone hook",
        ),
        (
            "@hookimpl(wrapper=True)\ndef call_changed(call):\n    return (yield)\n",
            "call_changed is a hook wrapper, which simplephone does not support",
        ),
    ],
)
def test_plugin_with_invalid_hooks_is_disabled(site: Site, source: str, reason: str) -> None:
    site.install({"odd": source})
    host = site.host({})
    assert "odd" not in host.names
    [disabled] = host.disabled
    assert (disabled.cause, disabled.reason) == (DisableCause.INVALID, reason)


def test_hook_with_unknown_argument_is_disabled(site: Site) -> None:
    site.install({"odd": "@hookimpl\ndef call_changed(phone, caller):\n    pass\n"})
    host = site.host({})
    [disabled] = host.disabled
    assert disabled.cause is DisableCause.INVALID
    # pluggy words the problem; the host keeps it on one line for the screen.
    assert disabled.reason.startswith("Plugin 'odd' for hook 'call_changed'; ")
    assert "'caller'" in disabled.reason and "\n" not in disabled.reason


def test_call_first_goes_latest_registered_first_and_skips_none(site: Site) -> None:
    site.install(
        {
            "a_dnd": "@hookimpl\ndef incoming_call(call):\n    return 486\n",
            "b_silent": "@hookimpl\ndef incoming_call(call):\n    CALLS.append(call)\n",
        }
    )
    host = site.host({})
    # Entry points register by name: b_silent last, so it is asked first.
    assert host.call_first("incoming_call", phone=None, call=3) == 486
    assert plugin_module("b_silent").CALLS == [3]


@pytest.mark.parametrize(
    ("hook", "answer", "reason"),
    [
        ("incoming_call", "200", "incoming_call answered 200, not a SIP status from 400 to 699"),
        ("incoming_call", "True", "incoming_call answered True, not a SIP status from 400 to 699"),
        ("button_pressed", "'end'", "button_pressed answered 'end', not True"),
    ],
)
def test_firstresult_answer_the_hook_does_not_allow_disables_plugin(
    site: Site, hook: str, answer: str, reason: str
) -> None:
    site.install(
        {
            "a_fine": "@hookimpl\ndef incoming_call():\n    return 603\n"
            "@hookimpl\ndef button_pressed():\n    return True\n",
            "b_wrong": f"@hookimpl\ndef {hook}():\n    return {answer}\n",
        }
    )
    host = site.host({})
    kwargs = {"call": 1} if hook == "incoming_call" else {"button": "end", "long_press": False}
    expected = 603 if hook == "incoming_call" else True
    assert host.call_first(hook, phone=None, **kwargs) == expected
    [disabled] = host.disabled
    assert (disabled.name, disabled.reason) == ("b_wrong", reason)


def test_false_from_button_pressed_lets_the_next_plugin_answer(site: Site) -> None:
    site.install(
        {
            "a_handler": "@hookimpl\ndef button_pressed(button):\n    return button == 'page'\n",
            "b_passes": "@hookimpl\ndef button_pressed():\n    return False\n",
        }
    )
    host = site.host({})
    assert host.call_first("button_pressed", phone=None, button="page", long_press=True) is True
    assert host.call_first("button_pressed", phone=None, button="end", long_press=True) is None
    assert host.disabled == []


def test_awaitable_from_firstresult_hook_disables_plugin(site: Site) -> None:
    site.install(
        {
            "lazy": """
                @hookimpl
                def button_pressed(button):
                    async def later():
                        return True
                    return later()
                """,
        }
    )
    host = site.host({})
    assert host.call_first("button_pressed", phone=None, button="end", long_press=False) is None
    [disabled] = host.disabled
    assert disabled.reason == "button_pressed must answer at once, it returned an awaitable"


def test_core_mistakes_raise(site: Site) -> None:
    site.install({"recorder": RECORDER})
    host = site.host({})
    with pytest.raises(AttributeError, match="no hook named 'call_chnaged'"):
        host.call("call_chnaged", phone=None, call=1)
    with pytest.raises(TypeError, match="takes"):
        host.call("call_changed", phone=None)


def test_awaitable_outside_the_event_loop_is_the_callers_mistake(site: Site) -> None:
    site.install(
        {
            "eager": """
                @hookimpl
                def phone_started(phone):
                    async def work():
                        CALLS.append("ran")
                    return work()
                """,
        }
    )
    host = site.host({})
    with pytest.raises(RuntimeError, match="called outside the event loop"):
        host.call("phone_started", phone=None)
    assert "eager" in host.names


STATE = """
@hookimpl
def control_state():
    return STATE_ANSWER

STATE_ANSWER = None
"""


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"calls": []}, "control_state answered {'calls': []}, not a mapping of new key names"),
        ({"when": object()}, "control_state answered {'when': <object object"),
        ([("watchers", 1)], "control_state answered [('watchers', 1)], not a mapping"),
    ],
)
def test_control_state_answers_are_new_json_keys_or_the_plugin_goes(
    site: Site, answer: object, reason: str
) -> None:
    site.install({"good": STATE, "bad": STATE})
    host = site.host({})
    plugin_module("good").STATE_ANSWER = {"watchers": [{"uri": "sip:carol@x.org"}]}
    plugin_module("bad").STATE_ANSWER = answer
    good = [{"watchers": [{"uri": "sip:carol@x.org"}]}]
    assert host.collect("control_state", phone=None) == good
    [disabled] = host.disabled
    assert disabled.name == "bad" and disabled.reason.startswith(reason)
    assert host.collect("control_state", phone=None) == good


def test_trace_logs_each_hook_call(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    site.install({"recorder": RECORDER})
    host = site.host({}, trace=True)
    with caplog.at_level(logging.DEBUG, logger="phone.plugins"):
        host.call("registration_changed", phone=None, registered=False, code=408, reason="Timeout")
    assert "hook registration_changed -> recorder: 'recorded'" in caplog.messages


# -- the call-log plugin ------------------------------------------------------


def call_log_host(settings: dict[str, Any]) -> PluginHost:
    """A host running the built-in call log alone, installed or not."""
    config = {
        ep.name: PluginConfig(enabled=False)
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    }
    config["call_log"] = PluginConfig(True, settings)
    return PluginHost(config, builtins={"call_log": call_log})


@dataclass
class StandInPhone:
    """The one `PhoneApi` member the call log uses, over a real store."""

    store: Store

    def tables(self, plugin: str, migrations: Sequence[Sequence[str]]) -> PluginTables:
        return PluginTables(self.store, plugin, migrations)

    @property
    def log(self) -> PluginTables:
        return self.tables(call_log.PLUGIN, call_log.MIGRATIONS)


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[StandInPhone]:
    store = Store(tmp_path / "phone.db")
    yield StandInPhone(store)
    store.close()


def finished(n: int, **changes: Any) -> CallInfo:
    """The core's own CallInfo for call `n`, ended after a minute's talk unless `changes` say."""
    call = CallInfo(
        id=n,
        remote_uri=f"sip:peer{n}@example.com",
        remote_name=f"Peer {n}",
        direction=Direction.IN,
        state=CallState.DISCONNECTED,
        started_at=1000.0 + 100 * n,
        connected_at=1005.0 + 100 * n,
        ended_at=1065.0 + 100 * n,
        code=200,
        reason="Normal call clearing",
    )
    for name, value in changes.items():
        setattr(call, name, value)
    return call


def test_call_log_records_finished_calls_through_the_host(phone: StandInPhone) -> None:
    host = call_log_host({})
    ringing = finished(1, state=CallState.RINGING, connected_at=None, ended_at=None)
    host.call("call_changed", phone=phone, call=ringing)
    assert call_log.recent(phone.log, 10) == []
    host.call("call_changed", phone=phone, call=finished(1))
    host.call(
        "call_changed",
        phone=phone,
        call=finished(2, connected_at=None, code=487, reason="Request Terminated"),
    )
    outgoing = finished(3, direction=Direction.OUT, connected_at=None)
    host.call("call_changed", phone=phone, call=outgoing)
    host.call("call_changed", phone=phone, call=finished(1))  # reported twice: logged once
    records = call_log.recent(phone.log, 10)
    assert [(r.remote_uri, r.outcome) for r in records] == [
        ("sip:peer3@example.com", call_log.CallOutcome.UNANSWERED),
        ("sip:peer2@example.com", call_log.CallOutcome.MISSED),
        ("sip:peer1@example.com", call_log.CallOutcome.ANSWERED),
    ]
    answered = records[2]
    assert answered == call_log.CallRecord(
        remote_uri="sip:peer1@example.com",
        remote_name="Peer 1",
        direction="in",
        started_at=1100.0,
        connected_at=1105.0,
        ended_at=1165.0,
        duration=60.0,
        code=200,
        reason="Normal call clearing",
        outcome=call_log.CallOutcome.ANSWERED,
    )
    assert (records[1].duration, records[1].code) == (0.0, 487)
    assert host.disabled == []


def test_call_log_prunes_to_max_entries(phone: StandInPhone) -> None:
    host = call_log_host({"max_entries": 3})
    for n in range(6):
        host.call("call_changed", phone=phone, call=finished(n))
    assert [r.remote_uri for r in call_log.recent(phone.log, 10)] == [
        f"sip:peer{n}@example.com" for n in (5, 4, 3)
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"max_entries": 0},
            "plugins.call_log.max_entries: must be an integer from 1 to 100000, got 0",
        ),
        (
            {"max_entries": "9"},
            "plugins.call_log.max_entries: must be an integer from 1 to 100000, got '9'",
        ),
        (
            {"max_entires": 9},
            "plugins.call_log.max_entires: unknown key (did you mean 'max_entries'?)",
        ),
    ],
)
def test_call_log_settings_are_checked(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        call_log_host(settings)
    assert str(caught.value) == message
