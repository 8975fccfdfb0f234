"""pjsua2 in this process, in poll mode, for tests and bench scripts that drive the SIP layer.

The phone's own endpoint (phone/sip/endpoint.py) runs pjsua the same way:
no worker threads, everything on the thread that calls `libHandleEvents`.
pjsua is a singleton, so a process has one endpoint at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from phone.config import AccountConfig, Transport
from phone.sip.layout import self_test
from phone.sip.lifetime import delete_now
from phone.sip.rawsip import RawSip
from tests.peers.ports import LISTEN_IP


def poll_endpoint() -> Any:
    """A started pjsua2 Endpoint: poll mode, quiet logs, the null sound device, no transports."""
    import pjsua2 as pj

    ep = pj.Endpoint()
    ep.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.logConfig.level = 1
    config.logConfig.consoleLevel = 1
    ep.libInit(config)
    ep.libStart()
    ep.audDevManager().setNullDev()
    return ep


def destroy_endpoint(ep: Any) -> None:
    """`ep.libDestroy()`, after deleting the pjsua2 calls, players and recorders
    that tests left behind: a failed test's traceback (`sys.last_traceback`)
    keeps its locals alive, and their destructors abort the process once
    pjsua is destroyed (phone/sip/lifetime.py). Accounts and buddies are left
    to Python: their destructors check that pjsua still knows them."""
    import gc

    import pjsua2 as pj

    left = (pj.Call, pj.AudioMediaPlayer, pj.AudioMediaRecorder)
    for obj in gc.get_objects():
        if isinstance(obj, left):
            delete_now(obj)
    ep.libDestroy()


def direct_account(user: str, port: int) -> AccountConfig:
    """The account of a phone in direct mode (no registrar), `user` at UDP `port` on loopback."""
    return AccountConfig(
        uri=f"sip:{user}@{LISTEN_IP}:{port}",
        username=user,
        password="",
        registrar=None,
        outbound_proxy=None,
        transport=Transport.UDP,
        port=port,
        rtp_port=0,
        reg_expires=300,
        display_name=None,
    )


def loopback_transport(ep: Any, kind: int) -> tuple[int, int]:
    """A transport of `kind` (pj.PJSIP_TRANSPORT_UDP...) on a free loopback port: (id, port)."""
    import pjsua2 as pj

    config = pj.TransportConfig()
    config.port = 0
    config.boundAddress = LISTEN_IP
    transport_id = ep.transportCreate(kind, config)
    return transport_id, int(ep.transportGetInfo(transport_id).localName.rpartition(":")[2])


def request_hook(ep: Any) -> RawSip:
    """The phone's request hook on `ep`, self-tested (it needs a transport to test against)."""
    hook = RawSip(ep)
    self_test(hook)
    return hook


class LoopClient:
    """The SIP layer's users on an asyncio loop, pumped from this thread with pjsua."""

    def __init__(self, ep: Any, raw: RawSip, port: int) -> None:
        self.ep, self.raw, self.port = ep, raw, port
        self.loop = asyncio.new_event_loop()

    def pump(self) -> None:
        self.ep.libHandleEvents(2)
        self.loop.run_until_complete(asyncio.sleep(0.001))

    def wait(self, condition: Callable[[], bool], timeout: float = 8.0, what: str = "") -> None:
        """Pump until `condition` holds; TimeoutError naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            self.pump()

    def finish(self, closing: Coroutine[Any, Any, None]) -> None:
        """Run `closing` (e.g. a subscriber's close) to its end, pumping pjsua meanwhile."""

        async def run() -> None:
            task = asyncio.ensure_future(closing)
            while not task.done():
                self.ep.libHandleEvents(2)
                await asyncio.sleep(0.002)
            task.result()

        self.loop.run_until_complete(run())
