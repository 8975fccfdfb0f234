"""The control interface of a virtual phone: every command, and malformed input."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from PIL import Image

from phone.control import ControlClient
from phone.remote import RemotePhone
from tests.phones import PhoneFactory, phones

__all__ = ["phones"]

CONTACTS = [(f"Person {n}", f"sip:p{n}@127.0.0.1:{40000 + n}") for n in range(1, 7)]


@pytest.fixture
def phone(phones: PhoneFactory) -> RemotePhone:
    """A direct-mode phone with six contacts on four buttons (two pages)."""
    phone, _ = phones.direct("alice", CONTACTS)
    return phone


def test_state_shape(phone: RemotePhone) -> None:
    state = phone.state()
    assert state["ok"] is True
    assert state["registered"] is False
    assert state["calls"] == []
    assert state["screen"][0] == "alice direct"
    assert len(state["screen"]) == 5
    assert set(state["buttons"]) == {"contact-1", "contact-2", "contact-3", "contact-4"}
    assert state["buttons"]["contact-2"] == {
        "contact": "sip:p2@127.0.0.1:40002",
        "label": "Person 2",
        "led": {"color": "off", "pattern": "off"},
    }


def test_long_press_shows_the_label_and_does_not_call(phone: RemotePhone) -> None:
    assert phone.press("contact-3", hold_ms=1000) == {"ok": True}
    state = phone.state()
    # The name, then what the presence plugin knows (these contacts never answer).
    assert state["screen"][1:3] == ["Person 3", "Unknown"]
    assert state["calls"] == []


def test_down_and_up(phone: RemotePhone) -> None:
    assert phone.request(cmd="down", button="contact-2") == {"ok": True}
    time.sleep(0.9)  # held past the long-press time: the label shows while held
    assert phone.state()["screen"][1] == "Person 2"
    assert phone.request(cmd="up", button="contact-2") == {"ok": True}
    assert phone.state()["calls"] == []


def test_page_turns_to_the_next_contacts(phone: RemotePhone) -> None:
    phone.press("page")
    state = phone.state()
    assert state["buttons"]["contact-1"]["label"] == "Person 5"
    assert state["buttons"]["contact-2"]["label"] == "Person 6"
    assert state["buttons"]["contact-3"] == {
        "contact": None,
        "label": None,
        "led": {"color": "off", "pattern": "off"},
    }
    assert state["screen"][-1] == "p2/2"
    phone.press("page")
    assert phone.state()["buttons"]["contact-1"]["label"] == "Person 1"


def test_function_buttons(phone: RemotePhone) -> None:
    phone.press("volume_up")
    assert phone.state()["volume"] == 90
    assert phone.state()["screen"][1] == "Volume 90%"
    for _ in range(12):
        phone.press("volume_down")
    assert phone.state()["volume"] == 0
    phone.press("mute")
    assert phone.state()["muted"] is True
    assert "MUTE" in phone.state()["screen"][-1]
    phone.press("dnd")
    assert phone.state()["dnd"] is True
    assert "DND" in phone.state()["screen"][-1]
    assert phone.press("end") == {"ok": True}  # nothing to end: harmless
    assert phone.press("answer") == {"ok": True}


def test_screenshot(phone: RemotePhone, tmp_path: Path) -> None:
    path = tmp_path / "screen.png"
    assert phone.request(cmd="screenshot", path=str(path)) == {"ok": True, "path": str(path)}
    image = Image.open(path)
    assert image.size == (512, 256)
    assert image.convert("L").getextrema() == (0, 255)  # something is drawn
    bad = phone.request(cmd="screenshot", path="relative.png")
    assert bad["ok"] is False and "absolute" in bad["error"]
    missing = phone.request(cmd="screenshot", path=str(tmp_path / "no" / "such" / "x.png"))
    assert missing["ok"] is False and "no such directory" in missing["error"]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "request must be a JSON object"),
        (b'{"cmd":"dance"}', "unknown command: 'dance'"),
        (b'{"nocmd":1}', "unknown command: None"),
        (b'{"cmd":"press","button":"contact-9"}', "unknown button: 'contact-9'"),
        (b'{"cmd":"press"}', "unknown button: None"),
        (b'{"cmd":"press","button":"end","hold_ms":-5}', "hold_ms must be an integer"),
        (b'{"cmd":"press","button":"end","hold_ms":"long"}', "hold_ms must be an integer"),
        (b'{"cmd":"up","button":42}', "unknown button: 42"),
        (b"\xff\xfe garbage", "malformed JSON"),
    ],
)
def test_malformed_requests_get_an_error_and_the_connection_stays(
    phone: RemotePhone, line: bytes, error: str
) -> None:
    answer = phone.raw(line)
    assert answer["ok"] is False
    assert error in answer["error"]
    assert phone.state()["ok"] is True  # same connection, still usable


def test_oversized_line_is_refused_and_the_connection_stays(phone: RemotePhone) -> None:
    answer = phone.raw(b'{"cmd":"state","pad":"' + b"x" * 100_000 + b'"}')
    assert answer == {"ok": False, "error": "request line too long"}
    assert phone.state()["ok"] is True


def test_tcp_control_and_pipelined_requests(phones: PhoneFactory) -> None:
    from phone.demo import free_port

    port = free_port()
    config = phones.workdir / "tcp.toml"
    config.write_text(
        f'[account]\nuri = "sip:tcp@127.0.0.1:{free_port()}"\n'
        f'[board]\nkind = "virtual"\nbuttons = 2\n'
        f'[storage]\npath = "{phones.workdir / "tcp.db"}"\n'
    )
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "phone",
            "run",
            "--config",
            str(config),
            "--control",
            f"tcp:127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = ControlClient(f"tcp:127.0.0.1:{port}")
                break
            except OSError:
                assert time.monotonic() < deadline, "control port never opened"
                time.sleep(0.05)
        # Two requests in one write: two answers, in order.
        client.sock.sendall(b'{"cmd":"state"}\n{"cmd":"press","button":"nope"}\n')
        first = json.loads(client.file.readline())
        second = json.loads(client.file.readline())
        assert first["ok"] is True and first["screen"][0] == "tcp direct"
        assert second == {"ok": False, "error": "unknown button: 'nope'"}
        client.close()
        # A client that vanishes mid-line does not hurt the server.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b'{"cmd":"sta')
        assert ControlClient(f"tcp:127.0.0.1:{port}").state()["ok"] is True
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
