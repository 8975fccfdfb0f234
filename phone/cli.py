"""`phone run | check-config | status | demo | emulator`: the firmware's command line."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from phone.board import Board, BoardUnavailable, board_kinds
from phone.config import Config, ConfigError, load_config

log = logging.getLogger("phone")

CONTROL_ENV = "SIMPLEPHONE_CONTROL"  # `phone status`: the control address
TOKEN_ENV = "SIMPLEPHONE_CONTROL_TOKEN"  # `phone status`: the token, when not in --config


def _board(config: Config, kind: str | None, overrides: dict[str, Any] | None = None) -> Board:
    from phone.board import board_class

    kind = kind or config.board.kind
    cls = board_class(kind)
    settings = config.board.settings if kind == config.board.kind else {}
    return cls(config.board.buttons, cls.validate_settings({**settings, **(overrides or {})}))


def check_config(path: str) -> Config:
    """Parse the file and every section that belongs to a board or a plugin."""
    from phone.board import board_class
    from phone.plugins import PluginHost

    config = load_config(path)
    try:
        board_class(config.board.kind).validate_settings(config.board.settings)
    except LookupError as exc:
        raise ConfigError("board.kind", str(exc)) from exc
    PluginHost(config.plugins)  # loads each enabled plugin and checks its settings
    return config


async def _run(
    config: Config, board: Board, control_address: str | None, sip_trace: bool = False
) -> int:
    """Run one phone until a signal or its board (the emulator's window) stops it."""
    from phone.sip.endpoint import PjsuaMissing, SipStartError, import_pjsua2

    try:
        import_pjsua2()  # before anything that needs it, to say what to install
    except PjsuaMissing as exc:
        log.error("%s", exc)
        return 2
    from phone.control import ControlRefused, ControlServer
    from phone.phone import Phone

    phone = Phone(config, board, sip_trace=sip_trace)
    try:
        control = ControlServer(phone, control_address, config.control) if control_address else None
    except ControlRefused as exc:
        log.error("%s", exc)
        return 2
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, phone.stop)
    board.on_close = phone.stop
    # The control interface opens first: it answers `state` at once and holds
    # other requests until the phone has started.
    if control is not None:
        await control.start()
    try:
        await phone.start()
    except (SipStartError, BoardUnavailable) as exc:
        log.error("%s", exc)
        if control is not None:
            await control.close()
        return 2 if isinstance(exc, SipStartError) else 1
    except ConfigError:  # a plugin's settings: down as after a stop, then main says why
        if control is not None:
            await control.close()
        await phone.shutdown()
        raise
    try:
        await phone.stopped()
    finally:
        try:
            if control is not None:
                await control.close()
        finally:
            await phone.shutdown()
    return 0


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
    """`phone emulator`: a config's phone in a window, or the demo (alice, Bob and
    Carol on loopback) without one."""
    sound = {"sound": args.sound} if args.sound else {}
    if args.config is not None:
        config = load_config(args.config)
        if args.log_level is None:
            logging.getLogger().setLevel(config.log_level.upper())
        return asyncio.run(_run(config, _board(config, "emulator", sound), args.control))
    from phone.demo_people import DemoPeople

    with tempfile.TemporaryDirectory(prefix="simplephone-emulator-") as tmp:
        workdir = Path(args.demo_dir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        people = DemoPeople(workdir)
        config = load_config(people.alice_config(args.sound or "default"))
        people.start()
        try:
            status = asyncio.run(_run(config, _board(config, None), args.control))
        finally:
            stopped = people.stop()
        for name, code in stopped.items():
            if code != 0:
                log.error("demo: %s's phone exited with status %s", name, code)
                status = status or 1
        return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phone", description=__doc__)
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: config)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the phone")
    run.add_argument("--config", required=True, help="the phone's TOML file")
    run.add_argument("--board", choices=board_kinds(), help="override [board] kind")
    run.add_argument("--control", help="control interface: tcp:HOST:PORT or unix:PATH")
    run.add_argument(
        "--sip-trace",
        action="store_true",
        help="log every SIP message (Authorization values masked)",
    )
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file")
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
    try:
        if args.command == "check-config":
            check_config(args.file)
            print(f"{args.file}: OK")
            return 0
        # A crash in the field (a segfault, a pjlib assertion's abort) then leaves
        # every thread's Python stack on stderr, which the journal keeps.
        faulthandler.enable()
        if args.command == "emulator":
            return _emulator(args)
        config = load_config(args.config)
        if args.log_level is None:
            logging.getLogger().setLevel(config.log_level.upper())
        return asyncio.run(
            _run(config, _board(config, args.board), args.control, sip_trace=args.sip_trace)
        )
    except ConfigError as exc:
        where = args.file if args.command == "check-config" else args.config or "demo"
        print(f"{Path(where)}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
