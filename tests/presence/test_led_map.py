"""The LED map from the config: applied by a running phone, refused by check-config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from phone.board import Led, LedColor, LedPattern
from phone.hookspecs import ConfigError
from phone.settings import Table
from plugins.presence import PresencePlugin, create_plugin
from plugins.presence.leds import DEFAULT_LEDS
from plugins.presence.state import ContactState
from tests.phones import PhoneFactory, phones, render_config
from tests.presence.test_hostile_documents import GOOD, Registrar, registrar

__all__ = ["phones", "registrar"]


def load(settings: dict[str, Any]) -> PresencePlugin:
    """`[plugins.presence]` read as the plugin host reads it."""
    table = Table("plugins.presence", settings)
    plugin = create_plugin(table)
    table.finish()
    return plugin


def test_defaults_and_overrides() -> None:
    plugin = load({"leds": {"available": "amber fast", "offline": "red slow"}})
    leds = plugin.settings.leds
    assert leds[ContactState.AVAILABLE] == Led(LedColor.AMBER, LedPattern.FAST)
    assert leds[ContactState.OFFLINE] == Led(LedColor.RED, LedPattern.SLOW)
    assert leds[ContactState.AWAY] == DEFAULT_LEDS[ContactState.AWAY]
    assert load({"leds": {"ringing": "off"}}).settings.leds[ContactState.RINGING] == Led()
    assert load({"rls_uri": "sip:Buddies@Example.com"}).settings.rls_uri == (
        "sip:Buddies@example.com"
    )


@pytest.mark.parametrize(
    ("settings", "key", "message"),
    [
        ({"leds": {"avilable": "green steady"}}, "leds.avilable", "did you mean 'available'?"),
        ({"leds": {"lost": "red fast"}}, "leds.lost", "(keys: available, away, busy"),
        ({"leds": {"away": "purple steady"}}, "leds.away", "got 'purple steady'"),
        ({"leds": {"away": "green"}}, "leds.away", "with colour green/red/amber"),
        ({"leds": {"away": 3}}, "leds.away", 'like "red fast" or "off", got 3'),
        ({"leds": {"away": True}}, "leds.away", "got true"),
        ({"leds": "green"}, "leds", "must be a table, got 'green'"),
        ({"rls_uri": "not a uri"}, "rls_uri", "not a SIP URI: 'not a uri'"),
        ({"rls_uri": 5}, "rls_uri", "must be a string, got 5"),
        ({"publish": "yes"}, "publish", "must be true or false, got 'yes'"),
        ({"watchers": 1}, "watchers", "must be true or false, got 1"),
        (
            {"colour": 1},
            "colour",
            "unknown key (keys: rls_uri, publish, watchers, rls_retry, leds)",
        ),
        ({"led": {}}, "led", "unknown key (did you mean 'leds'?)"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(settings)
    assert error.value.key == f"plugins.presence.{key}"
    assert message in error.value.message


def test_check_config_refuses_an_invalid_map(tmp_path: Path) -> None:
    config = render_config(
        {"uri": "sip:alice@127.0.0.1:5099"},
        [("Bob", "sip:bob@127.0.0.1:5098")],
        tmp_path,
        "alice",
        plugins={"presence": {"leds.busy": "red sometimes"}},
    )
    result = subprocess.run(
        [sys.executable, "-m", "phone", "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "plugins.presence.leds.busy:" in result.stderr + result.stdout


def test_a_custom_map_is_applied(registrar: Registrar, phones: PhoneFactory) -> None:
    port = registrar.peer.port
    alice = phones.start(
        "alice",
        {
            "uri": f"sip:alice@127.0.0.1:{port}",
            "password": "never-challenged",
            "registrar": f"sip:127.0.0.1:{port}",
        },
        [("Mallory", registrar.peer.uri)],
        plugins={"presence": {"leds.available": "amber fast"}},
    )
    registrar.notify(GOOD.replace(b"{e}", registrar.peer.uri.encode()))
    alice.wait_for(
        lambda s: s["buttons"]["contact-1"]["led"] == {"color": "amber", "pattern": "fast"},
        what="available shown as amber fast",
    )
