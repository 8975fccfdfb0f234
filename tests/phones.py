"""Whole phones for tests: config files, child processes, tone analysis."""

from __future__ import annotations

import wave
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from phone.demo import write_tone
from phone.remote import RemotePhone, stop_all
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port


def account(server: Kamailio, user: str, transport: str = "udp") -> dict[str, Any]:
    """The [account] table of a phone registered with `server` as `user`."""
    return {
        "uri": server.uri(user),
        "password": server.users[user],
        "registrar": server.registrar_uri,
        "transport": transport,
    }


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):  # an inline table, e.g. for an array of tables
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(
    account: dict[str, Any],
    contacts: list[tuple[str, str]],
    workdir: Path,
    name: str,
    buttons: int = 4,
    calls: dict[str, Any] | None = None,
    plugins: dict[str, dict[str, Any]] | None = None,
    mic: Path | None = None,
    board: dict[str, Any] | None = None,
    audio: dict[str, Any] | None = None,
    control: dict[str, Any] | None = None,
    storage: Path | None = None,
    room_contacts: list[tuple[str, str]] | None = None,
) -> Path:
    """The phone's TOML; `room_contacts` come after `contacts`, with `conference = true`."""
    lines = ["[account]", *(f"{k} = {toml_value(v)}" for k, v in account.items()), ""]
    for label, uri in contacts:
        lines += ["[[contacts]]", f"name = {toml_value(label)}", f"uri = {toml_value(uri)}", ""]
    for label, uri in room_contacts or []:
        lines += ["[[contacts]]", f"name = {toml_value(label)}", f"uri = {toml_value(uri)}"]
        lines += ["conference = true", ""]
    lines += ["[board]", 'kind = "virtual"', f"buttons = {buttons}", "", "[board.virtual]"]
    if mic is not None:
        lines.append(f"mic = {toml_value(str(mic))}")
    lines.append(f"speaker = {toml_value(str(workdir / f'{name}-speaker.wav'))}")
    lines += [*(f"{k} = {toml_value(v)}" for k, v in (board or {}).items()), ""]
    if audio:
        lines += ["[audio]", *(f"{k} = {toml_value(v)}" for k, v in audio.items()), ""]
    if calls:
        lines += ["[calls]", *(f"{k} = {toml_value(v)}" for k, v in calls.items()), ""]
    database = storage or workdir / f"{name}.db"
    lines += ["[storage]", f"path = {toml_value(str(database))}", ""]
    if control:
        lines += ["[control]", *(f"{k} = {toml_value(v)}" for k, v in control.items()), ""]
    for plugin, settings in (plugins or {}).items():
        lines += [
            f"[plugins.{plugin}]",
            *(f"{k} = {toml_value(v)}" for k, v in settings.items()),
            "",
        ]
    path = workdir / f"{name}.toml"
    path.write_text("\n".join(lines))
    return path


def dominant_frequency(path: Path, skip_s: float = 0.5) -> float:
    """The strongest frequency in a WAV, past its first `skip_s` seconds."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    return strongest_frequency(samples[int(rate * skip_s) :], rate, min_s=0.5)


def strongest_frequency(samples: np.ndarray, rate: int, min_s: float) -> float:
    """The spectral peak of the sounding 20 ms frames (silent ones are left out
    whole, so the waveform keeps its phase within each run of sound)."""
    frame = rate // 50
    frames = samples[: samples.size // frame * frame].reshape(-1, frame)
    sounding = frames[np.sqrt((frames**2).mean(axis=1)) > 100].ravel()
    assert sounding.size >= rate * min_s, f"less than {min_s} s of sound"
    spectrum = np.abs(np.fft.rfft(sounding * np.hanning(sounding.size)))
    return float(np.fft.rfftfreq(sounding.size, 1 / rate)[int(np.argmax(spectrum))])


def install_plugin(site: Path, entry_point: str, module: str, source: str) -> None:
    """A plugin as its own distribution on `site` (to go on the phone's
    PYTHONPATH), found through its `simplephone.plugins` entry point as a
    pip-installed one is."""
    (site / f"{module}.py").write_text(source)
    meta = site / f"{module}-1.0.dist-info"
    meta.mkdir()
    dist = module.replace("_", "-")
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text(f"[simplephone.plugins]\n{entry_point} = {module}\n")


class PhoneFactory:
    """Starts phones in child processes and stops them all at the end; a phone
    that did not exit with status 0 fails the test (`PhoneExitError`)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.phones: list[RemotePhone] = []

    def tone(self, name: str, freq: float) -> Path:
        path = self.workdir / f"{name}-mic.wav"
        write_tone(path, freq, seconds=2.0)
        return path

    def direct(
        self,
        name: str,
        contacts: list[tuple[str, str]] = (),  # type: ignore[assignment]
        port: int | None = None,
        **kwargs: Any,
    ) -> tuple[RemotePhone, str]:
        """A phone in no-registrar mode; returns it and its own URI."""
        port = port or free_port()
        uri = f"sip:{name}@127.0.0.1:{port}"
        phone = self.start(name, {"uri": uri}, list(contacts), **kwargs)
        return phone, uri

    def start(
        self,
        name: str,
        account: dict[str, Any],
        contacts: list[tuple[str, str]],
        wrapper: Sequence[str] = (),
        **kwargs: Any,
    ) -> RemotePhone:
        """A phone with `account` and `contacts`, run under `wrapper` (e.g. in
        a network namespace); `kwargs` go to `render_config`."""
        config = render_config(account, contacts, self.workdir, name, **kwargs)
        phone = RemotePhone(name, config, self.workdir, log_level="DEBUG")
        phone.wrapper = tuple(wrapper)
        self.phones.append(phone.start())
        return phone

    def stop_all(self) -> None:
        stop_all(self.phones)


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[PhoneFactory]:
    factory = PhoneFactory(tmp_path)
    yield factory
    factory.stop_all()


def call_states(state: dict[str, Any]) -> list[str]:
    return [c["state"] for c in state["calls"]]


def has_call(wanted: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: call_states(s) == [wanted]


def no_calls(state: dict[str, Any]) -> bool:
    return not state["calls"]


def ring_then_reject(caller: RemotePhone, callee: RemotePhone) -> None:
    """`caller` presses its first contact (`callee`), which rings and rejects the call."""
    caller.press("contact-1")
    callee.wait_for(has_call("ringing"), what=f"{callee.name} rings for {caller.name}")
    callee.press("end")
    for phone in (caller, callee):
        phone.wait_for(no_calls, what="call over")


def call_and_hang_up(caller: RemotePhone, callee: RemotePhone) -> None:
    """`caller` calls its first contact (`callee`), who answers as soon as it
    rings; `caller` hangs up as soon as the call is confirmed."""
    caller.press("contact-1")
    callee.wait_for(has_call("ringing"), what="rings")
    callee.press("answer")
    caller.wait_for(has_call("confirmed"), what="confirmed")
    caller.press("end")
    for phone in (caller, callee):
        phone.wait_for(no_calls, what="hung up")
