"""`phone run | check-config | status | demo`: the firmware's command line."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import signal
import sys
from pathlib import Path

from phone.board import Board, board_kinds
from phone.config import Config, ConfigError, load_config

log = logging.getLogger("phone")

CONTROL_ENV = "SIMPLEPHONE_CONTROL"  # `phone status`: the control address
TOKEN_ENV = "SIMPLEPHONE_CONTROL_TOKEN"  # `phone status`: the token, when not in --config


def _board(config: Config, kind: str | None) -> Board:
    from phone.board import board_class

    kind = kind or config.board.kind
    cls = board_class(kind)
    settings = config.board.settings if kind == config.board.kind else {}
    return cls(config.board.buttons, cls.validate_settings(settings))


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


async def _run(args: argparse.Namespace) -> int:
    from phone.sip.endpoint import PjsuaMissing, SipStartError, import_pjsua2

    config = load_config(args.config)
    try:
        import_pjsua2()  # before anything that needs it, to say what to install
    except PjsuaMissing as exc:
        log.error("%s", exc)
        return 2
    from phone.control import ControlRefused, ControlServer
    from phone.phone import Phone

    phone = Phone(config, _board(config, args.board), sip_trace=args.sip_trace)
    try:
        control = ControlServer(phone, args.control, config.control) if args.control else None
    except ControlRefused as exc:
        log.error("%s", exc)
        return 2
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, phone.stop)
    try:
        await phone.start()
    except SipStartError as exc:
        log.error("%s", exc)
        return 2
    # The control interface opens once the phone can act on what it is told.
    try:
        if control is not None:
            await control.start()
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
    try:
        if args.command == "check-config":
            check_config(args.file)
            print(f"{args.file}: OK")
            return 0
        if args.log_level is None:
            logging.getLogger().setLevel(load_config(args.config).log_level.upper())
        # A crash in the field (a segfault, a pjlib assertion's abort) then leaves
        # every thread's Python stack on stderr, which the journal keeps.
        faulthandler.enable()
        return asyncio.run(_run(args))
    except ConfigError as exc:
        where = args.file if args.command == "check-config" else args.config
        print(f"{Path(where)}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
