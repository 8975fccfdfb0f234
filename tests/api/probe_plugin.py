"""A plugin that uses every `PhoneApi` member and writes down what each answered.

The tests install it next to a phone (a distribution with an entry point, as
pip would) and read `API_PROBE_OUT`: one JSON object per line, `{"step": ...}`.
`API_PROBE_PEER` is a SIP peer the test plays; `API_PROBE_DIAL` a phone to call.
Long presses of function buttons drive the steps that need a running call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable
from typing import Any

from phone.api import (
    CallInfo,
    ChatSession,
    Contact,
    Led,
    LedColor,
    LedPattern,
    PhoneApi,
    ReferProgress,
    SipMessage,
)
from phone.hookspecs import hookimpl

MIGRATIONS = (("CREATE TABLE probe_notes (note TEXT NOT NULL)",),)
OFFERS: list[ChatSession] = []
RECEIVED: list[str] = []


def note(step: str, **values: Any) -> None:
    with open(os.environ["API_PROBE_OUT"], "a") as out:
        out.write(json.dumps({"step": step, **values}, default=str) + "\n")


def local_path(protocol: str) -> tuple[str, ...]:
    return (f"msrp://127.0.0.1:40002/probe;{protocol.split('/')[0].lower()}",)


def received(message: SipMessage) -> int:
    if message.content_type != "text/plain":
        return 415
    note("message_received", sender=message.from_.uri, text=message.body.decode())
    RECEIVED.append(message.body.decode())
    return 200


def progress(update: ReferProgress) -> None:
    note("refer_progress", status=update.status, reason=update.reason, final=update.final)


def chat_started(chat: ChatSession) -> None:
    note("chat_started", remote=chat.remote_uri, state=chat.state)


def chat_ended(chat: ChatSession) -> None:
    note("chat_ended", remote=chat.remote_uri, state=chat.state)


@hookimpl
def phone_started(phone: PhoneApi) -> Awaitable[None]:
    peer = os.environ["API_PROBE_PEER"]
    account = phone.account
    note(
        "account",
        aor=account.aor,
        display_name=account.display_name,
        direct=account.direct,
        domain=account.domain,
        credentials=repr(phone.credentials()),
        registered=phone.registered,
    )
    phone.replace_contacts("xcap", [Contact("Peer", peer), Contact("Lamp", peer + ";x=1", True)])
    on_button, found = phone.contact_on("contact-1"), phone.find_contact(peer)
    note(
        "contacts",
        all=[[c.name, c.uri, c.blf] for c in phone.contacts()],
        on_button=None if on_button is None else on_button.name,
        found=None if found is None else found.name,
    )
    refused = []
    for attempt in (
        lambda: phone.replace_contacts("config", []),
        lambda: phone.replace_contacts("xcap", [Contact("Bad", "mailto:bad@x.org")]),
        lambda: phone.set_led(peer, Led(LedColor.RED, LedPattern.FAST), "call"),
    ):
        try:
            attempt()
        except ValueError as exc:
            refused.append(str(exc))
    note("refused", errors=refused)
    phone.set_led(peer, Led(LedColor.RED, LedPattern.FAST), "probe")
    phone.set_indicator("probe", "P:1")
    phone.redraw()
    note("led", shown=phone.led_for(peer).as_dict())
    tables = phone.tables("probe", MIGRATIONS)
    with tables.transaction():
        tables.execute("INSERT INTO probe_notes (note) VALUES (?)", ("kept",))
    rows = tables.query("SELECT note FROM probe_notes")
    data = phone.data_dir("probe")
    note("storage", version=tables.version, rows=[r["note"] for r in rows], data_dir=str(data))
    phone.chat_sessions(local_path, chat_started, chat_ended)
    phone.receive_messages(received)
    return requests(phone, peer)


async def requests(phone: PhoneApi, peer: str) -> None:
    message = await phone.send_message(peer, b"hello", "text/plain")
    note("message", status=None if message is None else message.status)
    refer_to = f"<{os.environ['API_PROBE_DIAL']};method=INVITE>"
    refer = await phone.refer(peer, refer_to, progress)
    note("refer", status=None if refer is None else refer.status)


@hookimpl
def button_pressed(phone: PhoneApi, button: str, long_press: bool) -> bool | None:
    if not long_press:
        return None
    if button == "answer":
        calls = phone.calls()
        if calls:
            note("end_call", ended=phone.end_call(calls[0].id), again=phone.end_call(-1))
        else:
            call = phone.dial(os.environ["API_PROBE_DIAL"], "Dialled")
            note("dial", state=None if call is None else call.state, calls=len(phone.calls()))
    elif button == "mute":
        phone.set_dnd(not phone.dnd)
        phone.show_message(["probe", f"dnd {phone.dnd}"], 5.0)
    elif button == "page" and not OFFERS:
        OFFERS.append(phone.offer_chat(os.environ["API_PROBE_PEER"]))
        note("offer_chat", state=OFFERS[0].state)
    elif button == "page":
        note("offered_chat", state=OFFERS[0].state)
    else:
        return None
    return True


@hookimpl
def control_state() -> dict[str, object]:
    return {"probe": {"received": RECEIVED}}


@hookimpl
def call_changed(call: CallInfo) -> None:
    note("call_changed", id=call.id, state=call.state)
