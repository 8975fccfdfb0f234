"""The control interface: people, scripts and tests drive a phone from outside.

JSON lines over TCP (`tcp:127.0.0.1:PORT`) or a Unix socket (`unix:PATH`):
one request object per line, one response object per line, in order.

    {"cmd":"press","button":"contact-2"}                 short press
    {"cmd":"press","button":"contact-2","hold_ms":1200}  held, then released
    {"cmd":"down","button":"end"} / {"cmd":"up","button":"end"}
    {"cmd":"state"}        started, registered, buttons + LEDs, screen lines, calls
    {"cmd":"screenshot"}   the display as a PNG, base64, in the answer
    {"cmd":"screenshot","path":"/abs/file.png"}   written under [control] screenshot_dir
    {"cmd":"message","to":"sip:bob@example.test","text":"Hi"}   a pager MESSAGE

The interface presses buttons and writes files, so who may use it is
limited (`[control]`, phone.config.ControlSettings): TCP on an address other
than loopback is refused unless a token is configured; with a token, every
request carries it (`"token":"..."`), and a request without it, or with a
wrong one, is answered with an error and its connection closed: a client that
does not know the token can do nothing on it, and closing makes each guess
cost a new connection. A Unix socket is created 0600, or 0660 with the
configured group.

Every answer has "ok"; a failure has "error" instead of a result, and the
connection stays usable: nothing one request does (bad JSON, JSON nested too
deep, a path that cannot be written, a bug) escapes as an exception. A press is
answered once the button is released. When the phone stops, connected clients
are disconnected quietly.

The interface opens as the phone starts, before its plugins are loaded: `state`
is answered at once (with `started` false until then), every other request
once the phone has started.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import grp
import hmac
import io
import ipaddress
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phone.board import ButtonEvent
from phone.config import ControlSettings
from phone.sip.rawsip import SendError
from phone.uri import parse_sip_uri

if TYPE_CHECKING:
    from phone.phone import Phone

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
MAX_HOLD_MS = 60_000
MAX_MESSAGE_BYTES = 1300  # RFC 3428 section 6: a MESSAGE that fits a UDP datagram


class ControlError(ValueError):
    """A request the phone cannot carry out; its text goes back to the client."""


class Unauthorized(ControlError):
    """A request without the configured token: answered, then the connection is closed."""


class ControlRefused(RuntimeError):
    """The control interface cannot be opened as asked (the message says why)."""


def is_loopback(host: str) -> bool:
    """Whether a TCP listen address is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def parse_address(address: str) -> tuple[str, str, int]:
    """`tcp:HOST:PORT` or `unix:PATH` → (kind, host-or-path, port)."""
    kind, _, rest = address.partition(":")
    if kind == "unix" and rest:
        return "unix", rest, 0
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit() and int(port) < 65536:
            return "tcp", host.strip("[]"), int(port)
    raise ValueError(f"control address must be tcp:HOST:PORT or unix:PATH, got {address!r}")


class ControlServer:
    def __init__(self, phone: Phone, address: str, settings: ControlSettings | None = None) -> None:
        """Raises ControlRefused for an address the settings do not allow."""
        self.phone = phone
        self.kind, self.host, self.port = parse_address(address)
        self.settings = settings or ControlSettings()
        self._token = self.settings.token.encode() if self.settings.token else None
        if self.kind == "tcp" and not is_loopback(self.host) and self._token is None:
            raise ControlRefused(
                f"control on {address} is reachable from other machines: "
                "set [control] token, or listen on 127.0.0.1 or a Unix socket"
            )
        self._gid = -1
        if self.settings.group is not None:
            if self.kind != "unix":
                raise ControlRefused("[control] group applies to a Unix socket only")
            try:
                self._gid = grp.getgrnam(self.settings.group).gr_gid
            except KeyError:
                raise ControlRefused(
                    f"[control] group: no such group {self.settings.group!r}"
                ) from None
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._commands: dict[str, Callable[[dict[str, Any]], Any]] = {
            "press": self._press,
            "down": self._edge(True),
            "up": self._edge(False),
            "state": lambda _req: self.phone.describe(),
            "screenshot": self._screenshot,
            "message": self._message,
        }

    @property
    def address(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.host}"
        return f"tcp:{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen; ControlRefused when the address cannot be had (a port taken,
        a socket's directory missing): the operator's to fix, not a crash."""
        try:
            if self.kind == "unix":
                self._server = await asyncio.start_unix_server(
                    self._serve, sock=self._unix_socket(), limit=MAX_LINE
                )
            else:
                self._server = await asyncio.start_server(
                    self._serve, self.host, self.port, limit=MAX_LINE
                )
                self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ControlRefused(
                f"cannot open the control interface on {self.address}: {reason}"
            ) from None
        log.info("control interface on %s", self.address)

    def _unix_socket(self) -> socket.socket:
        """The listening socket, never connectable by others: bound under a umask
        that leaves only the owner, then opened to the group if one is set. If
        that fails, the socket is closed and its file removed before the error
        goes on (`start` turns it into ControlRefused)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.host)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(self.host)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old_umask)
        if self._gid != -1:
            try:
                os.chown(self.host, -1, self._gid)
                os.chmod(self.host, 0o660)
            except OSError:
                sock.close()  # nobody may connect to a socket left with the wrong rights
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.host)
                raise
        return sock

    async def close(self) -> None:
        """Stop listening and disconnect the clients (the phone is stopping)."""
        if self._server is not None:
            self._server.close()
            clients = list(self._clients)
            for task in clients:
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
            await self._server.wait_closed()
            log.info("control interface closed (%d client(s) disconnected)", len(clients))
        if self.kind == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.host)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    break  # the client went away (a partial last line is dropped)
                except asyncio.LimitOverrunError:
                    await _discard_line(reader)
                    writer.write(_encode({"ok": False, "error": "request line too long"}))
                    continue
                if line.strip():
                    try:
                        writer.write(await self.answer(line))
                    except Unauthorized as exc:
                        writer.write(_encode({"ok": False, "error": str(exc)}))
                        await writer.drain()
                        peer = writer.get_extra_info("peername") or "a Unix socket client"
                        log.warning("control request from %s refused: %s", peer, exc)
                        break
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # `close()`: the phone is stopping. The handler ends normally, as
            # asyncio's stream callback logs a cancelled handler as an error.
            pass
        finally:
            self._clients.discard(task)
            writer.close()

    async def answer(self, line: bytes) -> bytes:
        """One request line in, one answer line out, whatever the request does."""
        try:
            return _encode(await self.handle(line))
        except Unauthorized:
            raise
        except Exception as exc:  # a bug: answered, logged once, the connection kept
            log.exception("control request %.200r failed", line)
            return _encode({"ok": False, "error": f"internal error: {exc!r}"})

    async def handle(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self._malformed(f"malformed JSON: {exc}")
        except RecursionError:
            return self._malformed("malformed JSON: nested too deeply")
        if not isinstance(request, dict):
            return {"ok": False, "error": "request must be a JSON object"}
        self._check_token(request)
        command = self._commands.get(request.get("cmd"))  # type: ignore[arg-type]
        if command is None:
            return {"ok": False, "error": f"unknown command: {request.get('cmd')!r}"}
        if request.get("cmd") != "state":
            await self.phone.started.wait()
        try:
            result = command(request)
            if asyncio.iscoroutine(result):
                result = await result
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, **(result or {})}

    def _malformed(self, error: str) -> dict[str, Any]:
        """With a token configured, a request that cannot carry it is unauthorized."""
        if self._token is not None:
            raise Unauthorized(f"{error} (and a token is required)")
        return {"ok": False, "error": error}

    def _check_token(self, request: dict[str, Any]) -> None:
        if self._token is None:
            return
        token = request.get("token")
        if not isinstance(token, str):
            raise Unauthorized("this phone requires a token")
        if not hmac.compare_digest(token.encode(), self._token):
            raise Unauthorized("wrong token")

    def _button(self, request: dict[str, Any]) -> str:
        button = request.get("button")
        if not isinstance(button, str) or button not in self.phone.board.button_names:
            raise ControlError(f"unknown button: {button!r}")
        return button

    def _edge(self, down: bool) -> Callable[[dict[str, Any]], None]:
        def edge(request: dict[str, Any]) -> None:
            self.phone.board.inject(ButtonEvent(self._button(request), down))

        return edge

    async def _press(self, request: dict[str, Any]) -> None:
        button = self._button(request)
        hold_ms = request.get("hold_ms", 0)
        if (
            not isinstance(hold_ms, int)
            or isinstance(hold_ms, bool)
            or not 0 <= hold_ms <= MAX_HOLD_MS
        ):
            raise ControlError(f"hold_ms must be an integer from 0 to {MAX_HOLD_MS}")
        self.phone.board.inject(ButtonEvent(button, True))
        if hold_ms:
            await asyncio.sleep(hold_ms / 1000)
        self.phone.board.inject(ButtonEvent(button, False))

    def _screenshot(self, request: dict[str, Any]) -> dict[str, Any]:
        """Without a path, the PNG in the answer; with one, written under
        `[control] screenshot_dir` only (the phone may run as root)."""
        path = request.get("path")
        if path is None:
            png = io.BytesIO()
            self.phone.screen.screenshot(png)
            return {"png": base64.b64encode(png.getvalue()).decode()}
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ControlError("path must be an absolute file path")
        if self.settings.screenshot_dir is None:
            raise ControlError(
                "screenshots are written to files only under [control] screenshot_dir; "
                "leave out path to get the PNG in the answer"
            )
        target = Path(path)
        if not target.parent.is_dir():
            raise ControlError(f"no such directory: {target.parent}")
        allowed = Path(self.settings.screenshot_dir).resolve()
        if not target.parent.resolve().is_relative_to(allowed):
            raise ControlError(f"path must be under the screenshot directory {allowed}")
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise ControlError(f"not a regular file: {path}")
        try:
            self.phone.screen.screenshot(path)
        except OSError as exc:
            raise ControlError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return {"path": path}

    async def _message(self, request: dict[str, Any]) -> dict[str, Any]:
        """Text to someone as a pager-mode MESSAGE (RFC 3428), what a chat client
        shows; answered with the final status (null: none came)."""
        to, text = request.get("to"), request.get("text")
        if not isinstance(to, str) or not isinstance(text, str) or not text:
            raise ControlError("message needs to (a SIP URI) and text (a non-empty string)")
        try:
            parse_sip_uri(to)
        except ValueError as exc:
            raise ControlError(f"to: {exc}") from None
        body = text.encode()
        if len(body) > MAX_MESSAGE_BYTES:
            raise ControlError(f"text is over {MAX_MESSAGE_BYTES} bytes (RFC 3428 section 6)")
        try:
            response = await self.phone.api.send_message(to, body)
        except SendError as exc:
            raise ControlError(f"cannot send to {to}: {exc}") from None
        return {"status": None if response is None else response.status}


async def _discard_line(reader: asyncio.StreamReader) -> None:
    """Skip the rest of an over-long line, however long, without buffering it."""
    while True:
        try:
            await reader.readuntil(b"\n")
            return
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)


def _encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class ControlClient:
    """A blocking client for scripts, the demo and the tests."""

    def __init__(self, address: str, timeout: float = 10.0, token: str | None = None) -> None:
        self.token = token  # sent with every `request`
        kind, host, port = parse_address(address)
        if kind == "unix":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(host)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rwb")

    def raw(self, line: bytes) -> dict[str, Any]:
        self.file.write(line if line.endswith(b"\n") else line + b"\n")
        self.file.flush()
        answer: dict[str, Any] = json.loads(self.file.readline())
        return answer

    def request(self, **request: Any) -> dict[str, Any]:
        if self.token is not None:
            request["token"] = self.token
        return self.raw(json.dumps(request).encode())

    def press(self, button: str, hold_ms: int = 0) -> dict[str, Any]:
        return self.request(cmd="press", button=button, hold_ms=hold_ms)

    def state(self) -> dict[str, Any]:
        return self.request(cmd="state")

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0, what: str = ""
    ) -> dict[str, Any]:
        """Poll `state` until `predicate` holds; TimeoutError with the last state otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what or predicate}: {state}")
            time.sleep(0.02)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
            self.sock.close()
