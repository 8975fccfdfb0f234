"""A SIP stack that stops while its pjsua2 objects are still referenced.

Run as `python -m tests.sip.outlive_stack WORKDIR`, a process of its own
(pjsua is a singleton, and an abort must not take pytest down). The stack, in
direct mode, calls itself and answers, with the phone's WAV mic and speaker
connected to the call; `call_changed` raises once, inside pjsua2's
`onCallState`, so SWIG prints the exception and keeps it in
`sys.last_traceback`, with the frame that holds the pjsua2 `Call`, as a
plugin's bug would. Everything stays referenced through `SipStack.stop`:
both `SipCall`s, the account, the call's `AudioMedia`, the WAV player and
recorder, the pjsua2 `Call` in that traceback. Then each is used, and what
happened is printed as one JSON object (use → the exception's class name, or
"ok"); they are dropped after that, the traceback's only at exit. Before
`phone.sip.lifetime`, the process aborted (exit 134) in the first pjsua2
method or destructor reached after `libDestroy`.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phone.board import AudioEndpoints
from phone.calls import CallState
from phone.config import AccountConfig, AudioSettings, CallsConfig, Transport
from phone.demo import write_tone
from phone.media import PhoneAudio
from phone.sip.call import SipCall
from phone.sip.endpoint import SipStack
from tests.peers.ports import LISTEN_IP, free_port


class CoreWithABug:
    """The core's side of the SIP layer: answers every call, connects its audio
    and, once, raises from `call_changed` when a call is confirmed."""

    def __init__(self, audio: PhoneAudio) -> None:
        self.audio = audio
        self.calls: list[SipCall] = []
        self.media: list[Any] = []
        self.raised = False

    def registration_changed(self, registered: bool, code: int, reason: str) -> None:
        pass

    def incoming_call(self, call: SipCall) -> None:
        self.calls.append(call)
        call.accept()

    def call_changed(self, call: SipCall) -> None:
        if call.info.state is CallState.CONFIRMED and not self.raised:
            self.raised = True
            raise RuntimeError("a bug in the core, inside pjsua2's onCallState")

    def call_media_ready(self, call: SipCall) -> None:
        for media in call.audio_media():
            self.audio.connect(media)
            self.media.append(media)


def outcome(use: Callable[[], object]) -> str:
    try:
        use()
    except Exception as exc:  # what a use after stop raises is the result
        return type(exc).__name__
    return "ok"


def pj_call_in_last_traceback() -> Any:
    """The pjsua2 Call that the frame of the failed `onCallState` holds."""
    for frame, _ in traceback.walk_tb(sys.last_traceback):
        if frame.f_code.co_name == "onCallState":
            return frame.f_locals["self"]
    raise AssertionError("no onCallState frame in sys.last_traceback")


def direct_account() -> AccountConfig:
    """alice in direct mode (no registrar) on a free UDP port of loopback."""
    port = free_port()
    return AccountConfig(
        uri=f"sip:alice@{LISTEN_IP}:{port}",
        username="alice",
        password="",
        registrar=None,
        outbound_proxy=None,
        transport=Transport.UDP,
        port=port,
        rtp_port=0,
        reg_expires=300,
        display_name=None,
    )


async def main(workdir: Path) -> dict[str, str]:
    account = direct_account()
    uri = account.uri
    mic, speaker = workdir / "mic.wav", workdir / "speaker.wav"
    write_tone(mic, 440, seconds=1.0)
    stack = SipStack(account, CallsConfig(), None)
    audio = PhoneAudio(stack.pj, AudioEndpoints(str(mic), str(speaker)), AudioSettings(), print)
    core = CoreWithABug(audio)
    stack.report_to(core)
    stack.start()
    stack.attach(asyncio.get_running_loop())
    stack.start_services()
    audio.open(stack.ep)
    sip_account = stack.account
    assert sip_account is not None
    outgoing = sip_account.make_call(uri, None)
    for _ in range(500):
        if core.media and core.raised and outgoing.info.state is CallState.CONFIRMED:
            break
        await asyncio.sleep(0.01)
    else:
        raise TimeoutError("the call to ourselves was not confirmed with audio")
    pj_call = pj_call_in_last_traceback()
    kept_mic, kept_speaker = audio.mic, audio.speaker
    await stack.stop(before_destroy=audio.close)
    incoming = core.calls[0]
    return {
        "hang up": outcome(incoming.end),
        "answer": outcome(incoming.accept),
        "transfer": outcome(lambda: outgoing.transfer(uri, None)),
        "call state": outgoing.info.state.value,
        "pjsua2 call": outcome(pj_call.getInfo),
        "call audio": outcome(core.media[0].getPortInfo),
        "call again": outcome(lambda: sip_account.make_call(uri, None)),
        "serve presence": outcome(lambda: sip_account.serve_presence(True, None, None)),
        "pjsua2 account": outcome(sip_account.getInfo),
        "wav mic": outcome(kept_mic.getPortId),
        "wav speaker": outcome(kept_speaker.getPortId),
    }


if __name__ == "__main__":
    faulthandler.enable()
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))), flush=True)
