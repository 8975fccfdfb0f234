"""The control interface of a virtual phone: every command, and malformed input."""

from __future__ import annotations

import asyncio
import base64
import grp
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from phone.config import ControlSettings
from phone.control import ControlClient, ControlRefused, ControlServer
from phone.hookspecs import CORE_STATE_KEYS
from phone.remote import RemotePhone
from tests.peers.ports import free_port
from tests.phones import PhoneFactory, phones, render_config

__all__ = ["phones"]

CONTACTS = [(f"Person {n}", f"sip:p{n}@127.0.0.1:{40000 + n}") for n in range(1, 7)]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """The phone's `[control] screenshot_dir`."""
    path = tmp_path / "shots"
    path.mkdir()
    return path


@pytest.fixture
def phone(phones: PhoneFactory, shots: Path) -> RemotePhone:
    """A direct-mode phone with six contacts on four buttons (two pages)."""
    phone, _ = phones.direct("alice", CONTACTS, control={"screenshot_dir": str(shots)})
    return phone


def test_state_shape(phone: RemotePhone) -> None:
    state = phone.state()
    assert state["ok"] is True
    # The core's keys, and those of the built-in chat, conference and xcap plugins.
    assert set(state) == CORE_STATE_KEYS | {
        "messages",
        "files",
        "conference",
        "watchers",
        "contacts_source",
    }
    assert state["registered"] is False
    assert state["registration"] == {
        "registrar": None,
        "state": "direct",
        "code": 0,
        "reason": "",
    }
    # Direct mode: the presence plugin watches each contact at its own address.
    assert sorted((s["event"], s["target"]) for s in state["subscriptions"]) == sorted(
        ("presence", uri) for _, uri in CONTACTS
    )
    assert {"name": "presence", "state": "loaded"} in state["plugins"]
    assert state["refused"] == {"not_from_proxy": 0, "no_media_room": 0}
    assert state["uptime_s"] >= 0
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


def test_screenshot(phone: RemotePhone, shots: Path) -> None:
    path = shots / "screen.png"
    assert phone.request(cmd="screenshot", path=str(path)) == {"ok": True, "path": str(path)}
    image = Image.open(path)
    assert image.size == (512, 256)
    assert image.convert("L").getextrema() == (0, 255)  # something is drawn
    bad = phone.request(cmd="screenshot", path="relative.png")
    assert bad["ok"] is False and "absolute" in bad["error"]
    missing = phone.request(cmd="screenshot", path=str(shots / "no" / "such" / "x.png"))
    assert missing["ok"] is False and "no such directory" in missing["error"]


def test_screenshot_in_the_answer(phone: RemotePhone, shots: Path) -> None:
    answer = phone.request(cmd="screenshot")
    assert answer["ok"] is True and set(answer) == {"ok", "png"}
    (shots / "screen.png").write_bytes(base64.b64decode(answer["png"]))
    image = Image.open(shots / "screen.png")
    assert image.size == (512, 256)
    assert image.convert("L").getextrema() == (0, 255)


@pytest.mark.parametrize(
    "where",
    [
        "OUTSIDE",  # a directory the config does not name
        "SHOTS/../x.png",  # out of it through ..
        "SHOTS/escape/x.png",  # through a symlink to a directory outside
    ],
)
def test_screenshot_outside_the_directory_is_refused(
    phone: RemotePhone, shots: Path, tmp_path: Path, where: str
) -> None:
    (shots / "escape").symlink_to(tmp_path)
    path = where.replace("OUTSIDE", str(tmp_path / "x.png")).replace("SHOTS", str(shots))
    answer = phone.request(cmd="screenshot", path=path)
    assert answer == {
        "ok": False,
        "error": f"path must be under the screenshot directory {shots}",
    }
    assert not (tmp_path / "x.png").exists()


def test_screenshot_onto_a_symlink_is_refused(
    phone: RemotePhone, shots: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (shots / "link.png").symlink_to(victim)
    answer = phone.request(cmd="screenshot", path=str(shots / "link.png"))
    assert answer == {"ok": False, "error": f"not a regular file: {shots / 'link.png'}"}
    assert victim.read_text() == "precious"


def test_screenshot_to_a_file_needs_a_configured_directory(
    phones: PhoneFactory, tmp_path: Path
) -> None:
    phone, _ = phones.direct("bob")
    answer = phone.request(cmd="screenshot", path=str(tmp_path / "x.png"))
    assert answer["ok"] is False
    assert "only under [control] screenshot_dir" in answer["error"]
    assert not (tmp_path / "x.png").exists()
    assert phone.request(cmd="screenshot")["ok"] is True


def test_message_reaches_the_other_phones_chat(phones: PhoneFactory) -> None:
    bob, bob_uri = phones.direct("bob")
    alice, _ = phones.direct("alice", [("Bob", bob_uri)])
    assert alice.request(cmd="message", to=bob_uri, text="Lunch at noon?") == {
        "ok": True,
        "status": 200,
    }
    state = bob.wait_for(lambda s: bool(s["messages"]), what="the message in bob's chat")
    assert [(m["direction"], m["text"]) for m in state["messages"]] == [("in", "Lunch at noon?")]
    assert "Lunch at noon?" in state["screen"]


def test_unix_socket_is_for_its_owner_only(phone: RemotePhone) -> None:
    assert stat.S_IMODE(os.stat(phone.socket).st_mode) == 0o600


def test_unix_socket_with_a_group(phones: PhoneFactory) -> None:
    group = grp.getgrgid(os.getgid())
    phone, _ = phones.direct("bob", control={"group": group.gr_name})
    info = os.stat(phone.socket)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert info.st_gid == group.gr_gid


def test_a_socket_whose_rights_cannot_be_set_is_closed_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod fails (a filesystem that refuses it): the start is refused with the
    reason, and neither the bound socket nor its file is left behind."""

    def refuse(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted", str(path))

    path = tmp_path / "g.sock"
    group = grp.getgrgid(os.getgid()).gr_name
    server = ControlServer(None, f"unix:{path}", ControlSettings(group=group))  # type: ignore[arg-type]
    open_before = set(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(ControlRefused, match="Operation not permitted"):
        asyncio.run(server.start())
    monkeypatch.undo()
    assert set(os.listdir("/proc/self/fd")) <= open_before
    assert not path.exists()


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
        (b'{"cmd":"message","text":"hi"}', "message needs to (a SIP URI)"),
        (b'{"cmd":"message","to":"sip:p1@127.0.0.1:40001","text":""}', "message needs to"),
        (b'{"cmd":"message","to":"bob","text":"hi"}', "to: "),
        (
            b'{"cmd":"message","to":"sip:p1@127.0.0.1:40001","text":"' + b"x" * 1301 + b'"}',
            "text is over 1300 bytes",
        ),
    ],
)
def test_malformed_requests_get_an_error_and_the_connection_stays(
    phone: RemotePhone, line: bytes, error: str
) -> None:
    answer = phone.raw(line)
    assert answer["ok"] is False
    assert error in answer["error"]
    assert phone.state()["ok"] is True  # same connection, still usable


@pytest.mark.parametrize(
    "line",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"cmd":"state","x":' + b'{"a":' * 5000 + b"1" + b"}" * 5001,
    ],
)
def test_deeply_nested_request_gets_an_error_and_the_connection_stays(
    phone: RemotePhone, line: bytes
) -> None:
    assert phone.raw(line) == {"ok": False, "error": "malformed JSON: nested too deeply"}
    assert phone.state()["ok"] is True


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/proc/self/mem", "path must be under the screenshot directory"),
        ("DIR", "not a regular file: "),
    ],
)
def test_screenshot_to_an_unwritable_path_gets_an_error_and_the_connection_stays(
    phone: RemotePhone, shots: Path, path: str, error: str
) -> None:
    if path == "DIR":
        path = str(shots / "dir")
        os.mkdir(path)
    answer = phone.request(cmd="screenshot", path=path)
    assert answer["ok"] is False
    assert answer["error"].startswith(error)
    assert phone.state()["ok"] is True


def test_a_failing_command_is_answered_as_an_internal_error() -> None:
    """A bug in a command (here `state`) is answered, not dropped with the connection."""

    class BrokenPhone:
        def describe(self) -> dict[str, object]:
            raise ZeroDivisionError("division by zero")

    server = ControlServer(BrokenPhone(), "unix:/nonexistent.sock")  # type: ignore[arg-type]
    answer = json.loads(asyncio.run(server.answer(b'{"cmd":"state"}')))
    assert answer == {
        "ok": False,
        "error": "internal error: ZeroDivisionError('division by zero')",
    }


def test_stop_with_clients_connected_is_quiet(phones: PhoneFactory) -> None:
    """One client idle, one in the middle of a long press: the phone stops at
    once, exits 0, and its log says so without a traceback."""
    phone, _ = phones.direct("alice")
    idle = ControlClient(f"unix:{phone.socket}")
    assert idle.state()["ok"] is True
    pressing = ControlClient(f"unix:{phone.socket}")
    pressing.file.write(b'{"cmd":"press","button":"end","hold_ms":60000}\n')
    pressing.file.flush()
    deadline = time.monotonic() + 10
    while "long press on end" not in phone.log_path.read_text():  # held, not yet answered
        assert time.monotonic() < deadline, "the press never started"
        time.sleep(0.05)
    assert phone.stop(timeout=10) == 0
    log = phone.log_path.read_text()
    assert "Traceback" not in log
    closed = re.search(r"control interface closed \((\d+) client\(s\) disconnected\)", log)
    assert closed is not None and int(closed[1]) >= 2  # and perhaps RemotePhone's own client
    idle.close()
    pressing.close()


def test_oversized_line_is_refused_and_the_connection_stays(phone: RemotePhone) -> None:
    answer = phone.raw(b'{"cmd":"state","pad":"' + b"x" * 100_000 + b'"}')
    assert answer == {"ok": False, "error": "request line too long"}
    assert phone.state()["ok"] is True


def test_tcp_control_and_pipelined_requests(phones: PhoneFactory) -> None:
    from tests.peers.ports import free_port

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


TOKEN = "s3cret-token-0123456789"


def start_tcp_phone(
    workdir: Path, host: str, control: str = ""
) -> tuple[subprocess.Popen[str], int]:
    """A direct-mode phone with its control interface on `host`; its log is its stdout."""
    from tests.peers.ports import free_port

    port = free_port()
    config = workdir / "tcp.toml"
    config.write_text(
        f'[account]\nuri = "sip:tcp@127.0.0.1:{free_port()}"\n'
        f'[board]\nkind = "virtual"\nbuttons = 2\n'
        f'[storage]\npath = "{workdir / "tcp.db"}"\n'
        f"{control}"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "phone", "run", "--config", str(config)]
        + ["--control", f"tcp:{host}:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port


def connect(port: int, proc: subprocess.Popen[str], token: str | None = None) -> ControlClient:
    deadline = time.monotonic() + 10
    while True:
        try:
            return ControlClient(f"tcp:127.0.0.1:{port}", token=token)
        except OSError:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "control port never opened"
            time.sleep(0.05)


def test_tcp_beyond_loopback_without_a_token_is_refused(tmp_path: Path) -> None:
    proc, _ = start_tcp_phone(tmp_path, "0.0.0.0")
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 2, output
    assert "reachable from other machines: set [control] token" in output


def test_tcp_with_a_token_needs_it_in_every_request(tmp_path: Path) -> None:
    proc, port = start_tcp_phone(tmp_path, "0.0.0.0", f'[control]\ntoken = "{TOKEN}"\n')
    try:
        client = connect(port, proc, TOKEN)
        assert client.state()["ok"] is True
        assert client.press("page") == {"ok": True}
        client.close()
        # Without the token, with a wrong one, or unreadable: an error, then the
        # connection is closed (each guess costs a connection).
        for line, error in [
            (b'{"cmd":"state"}', "this phone requires a token"),
            (b'{"cmd":"state","token":"guess-guess-guess-guess"}', "wrong token"),
            (b'{"cmd":"press","button":"end","token":7}', "this phone requires a token"),
            (b"{not json", "and a token is required"),
        ]:
            anonymous = connect(port, proc)
            answer = anonymous.raw(line)
            assert answer["ok"] is False and error in answer["error"]
            assert anonymous.file.readline() == b""  # closed by the phone
            anonymous.close()
        assert connect(port, proc, TOKEN).state()["ok"] is True
        # `phone status` takes the token from the environment (or from --config).
        status = [sys.executable, "-m", "phone", "status", "--control", f"tcp:127.0.0.1:{port}"]
        refused = subprocess.run(status, capture_output=True, text=True, timeout=20)
        assert refused.returncode == 2 and "this phone requires a token" in refused.stderr
        env = {**os.environ, "SIMPLEPHONE_CONTROL_TOKEN": TOKEN}
        shown = subprocess.run(status, capture_output=True, text=True, timeout=20, env=env)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("registration   none (direct mode)\n")
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, output
    assert TOKEN not in output
    assert output.count("control request from") == 5


def test_a_token_shorter_than_16_characters_is_a_config_error(tmp_path: Path) -> None:
    proc, _ = start_tcp_phone(tmp_path, "127.0.0.1", '[control]\ntoken = "short"\n')
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1, output
    assert "control.token: must be at least 16 characters long" in output


def test_unknown_socket_group_is_refused(tmp_path: Path) -> None:
    config = render_config({"uri": f"sip:g@127.0.0.1:{free_port()}"}, [], tmp_path, "g")
    config.write_text(config.read_text() + '[control]\ngroup = "no-such-group-here"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "phone", "run", "--config", str(config)]
        + ["--control", f"unix:{tmp_path / 'g.sock'}"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no such group 'no-such-group-here'" in proc.stderr
