"""The one pjsua2 Endpoint a test or bench process may have (pjsua is a singleton).

Poll mode (no worker threads), null sound device, no transports, quiet logs:
the caller adds the transports it needs and pumps with `ep.libHandleEvents(ms)`,
and calls `ep.libDestroy()` at the end, after every pjsua2 object it made.
"""

from __future__ import annotations

from typing import Any


def poll_mode_endpoint(pj: Any) -> Any:
    """A started Endpoint of the `pj` (pjsua2) module given."""
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    ep.libInit(cfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    return ep
