"""What `phone run` has imported when its first REGISTER goes out: the start
defers what the REGISTER does not need (bench/README.md, start → registered),
and sends it before the event loop, the board and the phone exist (phone.cli).
A real phone registers with Kamailio; a logging filter in the process notes
`sys.modules` at the account's "registering" line, which follows the REGISTER's
sending (phone/sip/account.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers.kamailio import Kamailio
from tests.phones import account, render_config

pytestmark = pytest.mark.kamailio

# Each costs milliseconds to tens of them on a Pi-class CPU, and none is needed
# to register: asyncio (with ssl and concurrent.futures), the board interface
# (its dataclasses and enums; the config and the command line need only the
# kinds, phone.board_kinds) and the board (luma, PIL), the phone with its
# control interface, store and screen, the call's SDP and message parsers,
# digest authentication (hashlib: pjsua answers the registrar's challenge
# itself), the IDNA codec (a SIP host is ASCII), package metadata (entry
# points: boards, plugins), the plugins, the SIP services with their XML
# payload parsers, MSRP and XCAP.
DEFERRED = (
    "asyncio",
    "ssl",
    "concurrent",
    "phone.board",
    "board",
    "luma",
    "PIL",
    "phone.phone",
    "phone.control",
    "phone.store",
    "phone.screen",
    "phone.sip.call",
    "phone.sip.sdp",
    "phone.sip.digest",
    "encodings.idna",
    "difflib",
    "importlib.metadata",
    "tempfile",
    "phone.first_boot",
    "plugins",
    "phone.api",
    "phone.sip.services",
    "phone.msrp",
    "phone.xcap",
    "lxml",
    "h11",
)

NOTE_MODULES = """
import logging, sys

class NoteModules(logging.Filter):
    def filter(self, record):
        if record.getMessage().startswith("registering "):
            with open(sys.argv[2], "w") as out:
                out.write("\\n".join(sorted(sys.modules)))
        return True

logging.getLogger("phone.sip.account").addFilter(NoteModules())
from phone.cli import main
sys.exit(main(["run", "--config", sys.argv[1]]))
"""


def test_the_first_register_goes_out_before_the_heavy_imports(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    config = render_config(account(kamailio, "alice"), [], tmp_path, "alice")
    noted = tmp_path / "modules.txt"
    proc = subprocess.Popen(
        [sys.executable, "-c", NOTE_MODULES, str(config), str(noted)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    log = []
    try:
        for line in proc.stderr:  # the log, until the registrar's answer
            log.append(line)
            if "registered as sip:alice@" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        log.append(proc.communicate(timeout=30)[1])
    assert proc.returncode == 0, "".join(log)
    assert "registered as sip:alice@" in "".join(log)
    # SIGTERM came with the registration, before the loop took the signals (phone.cli
    # _EarlyStop) unless the machine was very slow: it un-REGISTERs all the same.
    assert "unregistered (200" in "".join(log)
    modules = set(noted.read_text().split())
    assert "pjsua2" in modules  # the filter saw the phone's own start
    early = sorted(
        name for name in modules if any(name == d or name.startswith(d + ".") for d in DEFERRED)
    )
    assert early == []
