"""`phone run | check-config | wiring | first-boot | status | demo | emulator`:
the firmware's command line.

`phone run` sends its first REGISTER right after reading the config, before
it imports asyncio and builds the board and the phone, and waits a moment for
the answer (`REGISTER_ANSWER_WAIT_S`): bench/README.md, start → registered.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phone.board_kinds import BUILTIN_BOARDS, board_kinds, is_board_kind
from phone.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from phone.board import Board
    from phone.sip.endpoint import SipStack

log = logging.getLogger("phone")

# How long `phone run` polls pjsip for the first REGISTER's answer before it
# builds the rest: a registrar on the LAN answers, digest challenge included,
# in a few ms; a slow or absent one costs the start no more than this, and its
# answer is then taken by the event loop.
REGISTER_ANSWER_WAIT_S = 0.01

CONTROL_ENV = "SIMPLEPHONE_CONTROL"  # `phone status`: the control address
TOKEN_ENV = "SIMPLEPHONE_CONTROL_TOKEN"  # `phone status`: the token, when not in --config


def _board(config: Config, kind: str | None, overrides: dict[str, Any] | None = None) -> Board:
    from phone.board_kinds import board_class

    kind = kind or config.board.kind
    cls = board_class(kind)
    settings = config.board.settings if kind == config.board.kind else {}
    return cls(config.board.buttons, cls.validate_settings({**settings, **(overrides or {})}))


class _BoardKinds:
    """`--board`'s choices, read only when asked: a built-in kind is accepted
    without reading the installed packages' metadata, which the list (in an
    error) reads."""

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, str) and is_board_kind(kind)

    def __iter__(self) -> Iterator[str]:
        return iter(board_kinds())


def check_config(path: str) -> Config:
    """Parse the file and every section that belongs to a board or a plugin."""
    from phone.board_kinds import board_class
    from phone.plugins import PluginHost

    config = load_config(path)
    try:
        board_class(config.board.kind).validate_settings(config.board.settings)
    except LookupError as exc:
        raise ConfigError("board.kind", str(exc)) from exc
    PluginHost(config.plugins)  # loads each enabled plugin and checks its settings
    return config


class _EarlyStop:
    """SIGTERM and SIGINT from the first REGISTER until the loop takes them: noted,
    and the phone stops (un-REGISTERs) as soon as it runs."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._note)

    def _note(self, signum: int, frame: object) -> None:
        self.requested = True


def _start_sip(config: Config, sip_trace: bool = False) -> SipStack | int:
    """The SIP stack, started without the event loop: its REGISTER is out and
    perhaps answered. An exit status when it cannot start (pjsua2 missing: what
    to install; a port taken, no TLS)."""
    from phone.sip.endpoint import PjsuaMissing, SipStack, SipStartError

    try:
        sip = SipStack(config.account, config.calls, None, sip_trace)
        sip.start()
    except (PjsuaMissing, SipStartError) as exc:
        log.error("%s", exc)
        return 2
    sip.await_registration(REGISTER_ANSWER_WAIT_S)
    return sip


async def _run(
    config: Config,
    make_board: Callable[[], Board],
    control_address: str | None,
    config_file: Path | None = None,
    started: Callable[[], None] | None = None,
    sip: SipStack | None = None,
    early_stop: _EarlyStop | None = None,
) -> int:
    """Run one phone until a signal or its board (the emulator's window) stops it;
    `started` is called once it is up (the demo's people then write to it). A
    refused SD-card config noted beside `config_file` (phone.first_boot) is
    shown once the phone runs. `sip`: the stack `phone run` started before the
    loop (`_start_sip`), else it starts here (`phone emulator`: no SIP trace);
    a stop asked for meanwhile (`early_stop`) is done once the phone runs.
    However the run ends, the one `finally` below stops the phone, or the
    stack alone when the phone could not be built: either un-REGISTERs. A
    ConfigError (the board's or a plugin's settings) goes up once all is down,
    and main says why."""
    import asyncio

    from phone.board import BoardUnavailable
    from phone.control import ControlRefused, ControlServer
    from phone.phone import Phone
    from phone.sip.endpoint import SipStartError
    from phone.systemd import SystemdNotifier

    stack = sip if sip is not None else _start_sip(config)
    if isinstance(stack, int):
        return stack
    notifier = SystemdNotifier.from_environment()
    phone: Phone | None = None
    control: ControlServer | None = None
    watchdog: asyncio.Task[None] | None = None
    try:
        phone = Phone(config, make_board(), stack)
        phone.on_status = notifier.status
        if control_address:
            control = ControlServer(phone, control_address, config.control)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, phone.stop)
        if early_stop is not None and early_stop.requested:
            phone.stop()
        phone.board.on_close = phone.stop
        # The control interface opens first: it answers `state` at once and holds
        # other requests until the phone has started.
        if control is not None:
            await control.start()
        await phone.start()
        if config_file is not None:
            from phone.first_boot import read_pending_error  # not before the REGISTER

            config_error = read_pending_error(config_file)
            if config_error is not None:
                phone.show_config_error(config_error)
        notifier.ready(phone.status_line())
        watchdog = loop.create_task(notifier.keep_alive(stack.stalled), name="watchdog")
        if started is not None:
            started()
        await phone.stopped()
        notifier.stopping()
        return 0
    except (ControlRefused, SipStartError, BoardUnavailable) as exc:
        log.error("%s", exc)
        return 1 if isinstance(exc, BoardUnavailable) else 2
    finally:
        if watchdog is not None:
            watchdog.cancel()
        try:
            if control is not None:
                await control.close()
        finally:
            if phone is not None:
                await phone.shutdown()
            else:
                await stack.stop()
            notifier.close()


def _status(args: argparse.Namespace) -> int:
    from phone.status import fetch_state, format_status

    if not args.control:
        print(f"phone status: give --control, or set ${CONTROL_ENV}", file=sys.stderr)
        return 2
    try:
        token = load_config(args.config).control.token if args.config else None
    except ConfigError as exc:
        print(f"{Path(args.config)}: {exc}", file=sys.stderr)
        return 1
    try:
        state = fetch_state(args.control, token or os.environ.get(TOKEN_ENV))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"phone status: {args.control}: {exc}", file=sys.stderr)
        return 2
    print(format_status(state))
    return 0


def _emulator(args: argparse.Namespace) -> int:
    """`phone emulator`: a config's phone in a window, or the demo (alice, Bob,
    Carol and their room on loopback) without one."""
    import asyncio

    sound = {"sound": args.sound} if args.sound else {}
    if args.config is not None:
        config = load_config(args.config)
        if args.log_level is None:
            logging.getLogger().setLevel(config.log_level.upper())
        return asyncio.run(_run(config, lambda: _board(config, "emulator", sound), args.control))
    import tempfile

    from phone.demo_people import DemoPeople

    with tempfile.TemporaryDirectory(prefix="simplephone-emulator-") as tmp:
        workdir = Path(args.demo_dir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        chat_after = {} if args.demo_chat_after is None else {"chat_after_s": args.demo_chat_after}
        people = DemoPeople(workdir, **chat_after)
        people.start()  # the room's URI, in alice's config, is known once its focus listens
        try:
            config = load_config(people.alice_config(args.sound or "default"))
            board = _board(config, None)
            status = asyncio.run(
                _run(config, lambda: board, args.control, started=people.alice_started)
            )
        finally:
            stopped = people.stop()
        for name, code in stopped.items():
            if code != 0:
                log.error("demo: %s's phone exited with status %s", name, code)
                status = status or 1
        return status


def _rpi_settings(config_path: str | None) -> dict[str, Any]:
    """`[board.rpi]` of a config, checked, with a pin map; without a config, the
    default pin map's. A config without a pin map is an error."""
    from board.pinmap import DEFAULT_WIRING
    from board.rpi import RpiBoard

    if config_path is None:
        return RpiBoard.validate_settings({"wiring": DEFAULT_WIRING})
    config = check_config(config_path)
    if config.board.kind != RpiBoard.kind:
        raise ConfigError(
            "board.kind", f"the pin map is for kind = 'rpi', not {config.board.kind!r}"
        )
    settings = RpiBoard.validate_settings(config.board.settings)
    if settings["wiring"] is None:
        raise ConfigError("board.rpi.wiring", "missing: this config has no pin map")
    return settings


def _first_boot(args: argparse.Namespace) -> int:
    from phone.first_boot import FirstBoot

    return FirstBoot(
        boot_dir=Path(args.boot_dir),
        config_dir=Path(args.config_dir),
        check_config=check_config,
        root=Path(args.root),
        flag_dir=Path(args.flag_dir),
        user=args.user,
        admin_user=args.admin_user,
    ).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phone", description=__doc__)
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: config)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the phone")
    run.add_argument("--config", required=True, help="the phone's TOML file")
    run.add_argument(
        "--board",
        choices=_BoardKinds(),
        metavar="KIND",
        help=f"override [board] kind: {', '.join(sorted(BUILTIN_BOARDS))} or a board installed apart",
    )
    run.add_argument("--control", help="control interface: tcp:HOST:PORT or unix:PATH")
    run.add_argument(
        "--sip-trace",
        action="store_true",
        help="log every SIP message (Authorization values masked)",
    )
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file")
    wiring = sub.add_parser("wiring", help="draw the wiring diagram of a config's pin map")
    wiring.add_argument("--config", help="the phone's TOML file (default: the default pin map)")
    wiring.add_argument("--out", required=True, help="the PNG file to write")
    first_boot = sub.add_parser(
        "first-boot", help="take the config, Wi-Fi and SSH keys put on the boot partition"
    )
    first_boot.add_argument("--boot-dir", default="/boot/firmware", help="the boot partition")
    first_boot.add_argument(
        "--config-dir", default="/etc/simplephone", help="where phone.toml goes"
    )
    first_boot.add_argument(
        "--user", default="simplephone", help="the service user, owner of phone.toml"
    )
    first_boot.add_argument("--admin-user", default="admin", help="who gets the SSH keys")
    first_boot.add_argument("--root", default="/", help="the root file system to write into")
    first_boot.add_argument(
        "--flag-dir",
        default="/run/simplephone-first-boot",
        help="where enable-ssh, enable-wifi, set-hostname go",
    )
    sub.add_parser("demo", help="two virtual phones call each other on loopback")
    status = sub.add_parser("status", help="a running phone's state, for a person")
    status.add_argument(
        "--control",
        default=os.environ.get(CONTROL_ENV),
        help=f"the phone's control interface: tcp:HOST:PORT or unix:PATH (default: ${CONTROL_ENV})",
    )
    status.add_argument(
        "--config", help=f"read [control] token from this file (else ${TOKEN_ENV}, if set)"
    )
    emulator = sub.add_parser(
        "emulator", help="the phone in a window; without --config, the demo (alice, Bob, Carol)"
    )
    emulator.add_argument("--config", help="the phone's TOML file (its [board] kind is ignored)")
    emulator.add_argument("--demo", action="store_true", help="the demo (the default)")
    emulator.add_argument(
        "--sound", help="ALSA PCM for the microphone and speaker, or none (default: default)"
    )
    emulator.add_argument("--control", help="control interface: tcp:HOST:PORT or unix:PATH")
    emulator.add_argument("--demo-dir", help="keep the demo people's files and sockets here")
    emulator.add_argument(
        "--demo-chat-after",
        type=float,
        metavar="SECONDS",
        help="Carol's first chat message after this long (default: 20)",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=(args.log_level or "INFO").upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if args.command == "demo":
        from phone.demo import demo

        return demo()
    if args.command == "status":
        return _status(args)
    if args.command == "emulator" and args.demo and args.config:
        parser.error("emulator: --demo runs without a config; give one or the other")
    if args.command == "first-boot":
        return _first_boot(args)
    try:
        if args.command == "check-config":
            check_config(args.file)
            print(f"{args.file}: OK")
            return 0
        if args.command == "wiring":
            from board.wiring import draw_wiring

            settings = _rpi_settings(args.config)
            draw_wiring(settings["wiring"], settings["display"]).save(args.out)
            return 0
        # A crash in the field (a segfault, a pjlib assertion's abort) then leaves
        # every thread's Python stack on stderr, which the journal keeps.
        faulthandler.enable()
        if args.command == "emulator":
            return _emulator(args)
        config = load_config(args.config)
        if args.log_level is None:
            logging.getLogger().setLevel(config.log_level.upper())
        early_stop = _EarlyStop()
        sip = _start_sip(config, args.sip_trace)
        if isinstance(sip, int):
            return sip
        import asyncio  # after the REGISTER: tens of ms here

        return asyncio.run(
            _run(
                config,
                lambda: _board(config, args.board),
                args.control,
                config_file=Path(args.config),
                sip=sip,
                early_stop=early_stop,
            )
        )
    except ConfigError as exc:
        where = args.file if args.command == "check-config" else args.config or args.command
        print(f"{Path(where)}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
