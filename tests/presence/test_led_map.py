"""The LED map from the config: applied by a running phone, refused by check-config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from phone.board import Led, LedColor, LedPattern
from phone.hookspecs import ConfigError
from plugins.presence import create_plugin
from plugins.presence.leds import DEFAULT_LEDS
from plugins.presence.state import ContactState
from tests.phones import PhoneFactory, phones, render_config
from tests.presence.test_hostile_documents import GOOD, Registrar, registrar

__all__ = ["phones", "registrar"]


def test_defaults_and_overrides() -> None:
    plugin = create_plugin({"leds": {"available": "amber fast", "offline": "red slow"}})
    leds = plugin.settings.leds
    assert leds[ContactState.AVAILABLE] == Led(LedColor.AMBER, LedPattern.FAST)
    assert leds[ContactState.OFFLINE] == Led(LedColor.RED, LedPattern.SLOW)
    assert leds[ContactState.AWAY] == DEFAULT_LEDS[ContactState.AWAY]
    assert create_plugin({"leds": {"ringing": "off"}}).settings.leds[ContactState.RINGING] == Led()


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"leds": {"avilable": "green steady"}}, "leds.avilable"),
        ({"leds": {"away": "purple steady"}}, "leds.away"),
        ({"leds": {"away": "green"}}, "leds.away"),
        ({"leds": {"away": 3}}, "leds.away"),
        ({"leds": "green"}, "leds"),
        ({"rls_uri": "not a uri"}, "rls_uri"),
        ({"publish": "yes"}, "publish"),
        ({"colour": 1}, "colour"),
    ],
)
def test_invalid_settings_name_the_key(settings: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_plugin(settings)
    assert error.value.key == key


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
