"""The chat plugin's parts that need no phone: settings, the history bound,
what the screen shows of a conversation, and the answer to a file offer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from phone.api import MediaSection, PluginTables, SdpError
from phone.settings import ConfigError, Table
from phone.store import Store
from plugins.chat import create_plugin
from plugins.chat.files import FileTooLarge, answer_lines
from plugins.chat.history import History
from plugins.chat.view import COLUMNS, ChatView


def plugin_settings(**data: Any) -> Any:
    table = Table("plugins.chat", data)
    plugin = create_plugin(table)
    table.finish()
    return plugin.settings


def test_settings_and_their_errors() -> None:
    settings = plugin_settings()
    assert settings.replies == ("On my way", "Call you later", "Yes", "No")
    assert (settings.unread_led.color.value, settings.unread_led.pattern.value) == ("amber", "wink")
    assert settings.max_file_bytes == 10 << 20 and settings.relay is None
    relayed = plugin_settings(relay="msrps://relay.example.test:2855;tcp", replies=["Ok"])
    assert relayed.relay == "msrps://relay.example.test:2855;tcp" and relayed.replies == ("Ok",)
    assert plugin_settings(unread_led="red wink").unread_led.color.value == "red"
    for taken in ("green steady", "amber fast", "red slow", "off"):  # presence's, a call's
        with pytest.raises(ConfigError, match="plugins.chat.unread_led: its pattern must differ"):
            plugin_settings(unread_led=taken)
    with pytest.raises(ConfigError, match="plugins.chat.relay"):
        plugin_settings(relay="http://relay.example.test")
    with pytest.raises(ConfigError, match="plugins.chat.relay_password"):
        plugin_settings(relay_username="bob")
    with pytest.raises(ConfigError, match="plugins.chat.history"):
        plugin_settings(history=0)


class Tables:
    """The one `PhoneApi` member History uses, over a real store."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)

    def tables(self, plugin: str, migrations: Any) -> PluginTables:
        return PluginTables(self.store, plugin, migrations)


def test_history_keeps_the_last_messages_of_each_conversation(tmp_path: Path) -> None:
    history = History(Tables(tmp_path / "store.db"), bound=3)  # type: ignore[arg-type]
    me = "sip:bob@example.test"
    for index in range(5):
        history.add("sip:alice@example.test", "sip:alice@example.test", me, f"a{index}", True)
    history.add("sip:carol@example.test;transport=tcp", me, "sip:carol@example.test", "c", False)
    texts = [m["text"] for m in history.describe()["messages"]]
    assert texts == ["a2", "a3", "a4", "c"]
    assert [u.text for u in history.unread("sip:alice@example.test")] == ["a2", "a3", "a4"]
    assert history.unread_count() == 3  # our own message is never unread
    history.mark_read("sip:alice@EXAMPLE.test;transport=tcp")  # the same person: user@host
    assert history.unread_count() == 0 and history.unread_peers() == {}


def test_the_view_wraps_scrolls_and_picks_replies() -> None:
    text = "one two three four five six seven eight nine ten eleven"
    view = ChatView("sip:alice@example.test", "Alice", [text], ("Yes", "No"))
    lines = ["one two three four", "five six seven eight", "nine ten eleven"]
    assert view.lines() == ["Alice:", *lines[1:]]  # the newest lines
    view.scroll(1)  # volume_up: older
    assert view.lines() == ["Alice:", *lines[:2]]
    view.scroll(5)  # no further than the first line
    assert view.lines() == ["Alice:", *lines[:2]]
    view.scroll(-9)
    assert view.next_reply() == "Yes" and view.next_reply() == "No" and view.next_reply() == "Yes"
    assert view.lines() == ["Alice:", "nine ten eleven", "> Yes"]
    view.typing = True
    assert view.lines()[0] == "Alice: typing…"
    view.add("x" * 5000)  # a long text: its tail, never wider than the display
    assert all(len(line) <= COLUMNS for line in view.lines())


def section(*lines: str) -> MediaSection:
    return MediaSection("message", 2855, "TCP/MSRP", ("*",), lines)


SELECTOR = 'a=file-selector:name:"a.jpg" type:image/jpeg size:32349 hash:sha-1:72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E'


def test_a_file_offer_is_answered_recvonly_up_to_the_limit() -> None:
    offer = section("a=accept-types:image/jpeg", "a=sendonly", SELECTOR, "a=file-transfer-id:t1")
    lines = answer_lines(offer, 40_000)
    assert lines[:2] == ("a=accept-types:image/jpeg", "a=recvonly")
    assert SELECTOR in lines and "a=file-transfer-id:t1" in lines
    assert answer_lines(section("a=accept-types:text/plain"), 40_000) == ()  # a chat
    with pytest.raises(FileTooLarge):
        answer_lines(offer, 30_000)
    with pytest.raises(SdpError, match="pushes"):
        answer_lines(section("a=recvonly", SELECTOR), 40_000)  # a pull
    with pytest.raises(SdpError):
        answer_lines(section("a=sendonly", "a=file-selector:size:lots"), 40_000)
