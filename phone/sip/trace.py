"""SIP trace (`phone run --sip-trace`): every SIP message pjsip sends or receives, logged.

pjsip prints each message it sends and receives at log level 4 ("TX 512 bytes
Request msg INVITE/cseq=1 ... --end msg--"). With the trace on, pjsua's log
comes to Python's logging through a pjsua2 `LogWriter` (on the loop thread:
pjsua2 queues entries from other threads to the main thread in poll mode):
messages at INFO under `phone.sip.trace`, pjsua's errors and warnings at
their level, its other chatter at DEBUG under `pjsua`.

Credentials never reach a log: the values of Authorization and
Proxy-Authorization (RFC 3261 sections 20.7, 20.28) are masked in every
entry, keeping the scheme and the parameters that say who and what
(username, realm, uri) but no response, nonce or cnonce.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pjsua2 as pj

from phone.pjsua_callback import pjsua_callback

log = logging.getLogger(__name__)
pjsua_log = logging.getLogger("pjsua")

TRACE_LEVEL = 4  # pjsip logs whole messages at this level
_SHOWN_PARAMS = ("username", "realm", "uri", "algorithm")
# A header line (its continuation lines too) whose value is a credential.
_CREDENTIALS = re.compile(
    r"^((?:Proxy-)?Authorization[ \t]*:[ \t]*)(\S+)([^\r\n]*(?:\r?\n[ \t]+[^\r\n]*)*)",
    re.IGNORECASE | re.MULTILINE,
)
_PARAM = re.compile(r"([A-Za-z-]+)[ \t]*=[ \t]*(\"[^\"]*\"|[^,\s]*)")


def mask_credentials(text: str) -> str:
    """`text` with every Authorization/Proxy-Authorization value reduced to
    its scheme and harmless parameters."""

    def mask(match: re.Match[str]) -> str:
        shown = [
            f"{name}={value}"
            for name, value in _PARAM.findall(match[3])
            if name.lower() in _SHOWN_PARAMS
        ]
        return f"{match[1]}{match[2]} {', '.join(shown + ['<masked>'])}"

    return _CREDENTIALS.sub(mask, text)


class SipTraceWriter(pj.LogWriter):
    """pjsua's log into Python's logging, masked (see the module docstring)."""

    @pjsua_callback()
    def write(self, entry: Any) -> None:
        text = mask_credentials(str(entry.msg).rstrip())
        if "--end msg--" in text:
            log.info("%s", text)
        elif entry.level <= 1:
            pjsua_log.error("%s", text)
        elif entry.level == 2:
            pjsua_log.warning("%s", text)
        else:
            pjsua_log.debug("%s", text)


def enable_trace(log_config: Any) -> SipTraceWriter:
    """Turn message logging on in an `EpConfig.logConfig` before `libInit`; the
    writer returned must be kept alive until `libDestroy`."""
    writer = SipTraceWriter()
    log_config.msgLogging = True
    log_config.level = TRACE_LEVEL
    log_config.consoleLevel = TRACE_LEVEL
    log_config.decor = 0  # no pjsua time stamps: Python's logging has them
    log_config.writer = writer
    return writer
