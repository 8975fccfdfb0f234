"""The phone: one event loop that turns button presses and SIP events into actions.

Everything here runs on the asyncio loop thread: board edges arrive through
`Board.inject`/the board's reader, SIP events through pjsua2 callbacks fired
inside `libHandleEvents` (poll mode). An event crosses the house once: the
board reports a press, the phone decides, an action goes out to SIP; a SIP
event is turned into a `CallInfo` and handed to the plugins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import textwrap
import time
from collections.abc import Callable
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from phone.board import Board, Led, LedColor, LedPattern, contact_index
from phone.buttons import CALL_LAYER, Contact, ContactButtons, PressTracker
from phone.calls import CallInfo, CallState, Direction
from phone.config import Config, SecondCall
from phone.media import PhoneAudio
from phone.plugins import PluginHost, import_plugins
from phone.screen import Screen
from phone.sip.admission import NoMediaRoom
from phone.sip.call import SipCall
from phone.sip.endpoint import SipStack
from phone.store import Store, StoreFull
from phone.uri import parse_sip_uri

if TYPE_CHECKING:
    from phone.api import PhoneApi

log = logging.getLogger(__name__)

CALL_LEDS = {
    (Direction.IN, CallState.RINGING): Led(LedColor.GREEN, LedPattern.FAST),
    (Direction.OUT, CallState.CALLING): Led(LedColor.GREEN, LedPattern.SLOW),
    (Direction.OUT, CallState.RINGING): Led(LedColor.GREEN, LedPattern.SLOW),
    (Direction.OUT, CallState.EARLY): Led(LedColor.GREEN, LedPattern.SLOW),
    (Direction.IN, CallState.CONFIRMED): Led(LedColor.GREEN, LedPattern.STEADY),
    (Direction.OUT, CallState.CONFIRMED): Led(LedColor.GREEN, LedPattern.STEADY),
}
RESULT_SECONDS = 3.0
BUSY_CODES = (486, 600, 603)
TICK_S = 0.25
CONFIG_ERROR_WIDTH = 21  # characters on a 128-pixel line
CONFIG_ERROR_SECONDS = 60.0
# How long `start` lets the first REGISTER's answer in before it loads the
# plugins (a registrar on the LAN answers, challenge included, in a few ms).
REGISTRATION_HEAD_START_S = 0.2


def _import_services() -> None:
    import phone.api  # noqa: F401
    import phone.sip.services  # noqa: F401


def _mmss(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


class Phone:
    def __init__(
        self,
        config: Config,
        board: Board,
        sip: SipStack,
    ) -> None:
        """`sip`: the stack, started already: its REGISTER went out before the
        phone was built (`phone.cli`). The phone stops it in `shutdown`."""
        self.config = config
        self.board = board
        self.store = Store(config.storage.path)
        self.store.on_full = self._store_full_changed
        self.screen = Screen(board.display)
        self.buttons = ContactButtons(board)
        # The config's plugins load in `start`, once the first REGISTER is out.
        self.plugins = PluginHost()
        self.sip = sip
        self.audio = PhoneAudio(self.sip.pj, board.audio, config.audio, self._audio_problem_changed)
        # Handles, kept until DISCONNECTED; their pjsua2 calls belong to the SIP
        # account, which deletes them before the lib (phone/sip/account.py).
        self.calls: list[SipCall] = []
        self.registered = False
        self.registration_text = "starting"  # for the status line
        self.dnd = False
        self.presses = PressTracker(config.calls.long_press_ms, self.press)
        # Told one line for the operator when the registration changes (systemd's STATUS=).
        self.on_status: Callable[[str], None] | None = None
        self._stop = asyncio.Event()
        self.started = asyncio.Event()  # `start` is done: plugins loaded, contacts shown
        self._registration_answered = asyncio.Event()
        self._started_at = time.monotonic()
        self._tasks: list[asyncio.Task[Any]] = []
        self._disabled_shown = 0
        self._tone: str | None = None
        # A pending timer holds its call: it must not outlive the call (nor libDestroy).
        self._no_answer_timers: dict[SipCall, asyncio.TimerHandle] = {}

    @cached_property
    def api(self) -> PhoneApi:
        """What plugins get as `phone`. Imported when first needed: it brings the
        SIP services and payload parsers, which the first REGISTER does not need."""
        from phone.api import PhoneApi

        return PhoneApi(self)

    # -- lifecycle ------------------------------------------------------
    async def stopped(self) -> None:
        """Wait until `stop()` is called."""
        await self._stop.wait()

    async def start(self) -> None:
        """Start the board, hand SIP (started before the phone, its REGISTER out)
        to the loop, give the REGISTER's answer a moment
        (`REGISTRATION_HEAD_START_S`) while nothing else holds the loop; then
        load the plugins, show the contacts and tell the plugins we started
        (and, if the registration was answered meanwhile, how)."""
        loop = asyncio.get_running_loop()
        await self.board.start(self.presses.edge)
        direct = self.sip.account is not None and self.sip.account.direct
        self.registration_text = "direct" if direct else "registering"
        self.sip.report_to(self)  # the registration's answer, if it came already
        self.sip.attach(loop)
        self.redraw()
        if not direct:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._registration_answered.wait(), REGISTRATION_HEAD_START_S
                )
        # The SIP services', the plugin API's and the plugins' imports (payload
        # parsers, the plugins' own modules: about 200 ms) run on a worker thread,
        # so the loop answers pjsip and the control interface meanwhile; the
        # plugins are created and registered here, on the loop.
        await loop.run_in_executor(None, _import_services)
        self.sip.start_services()
        imported = await loop.run_in_executor(None, import_plugins, self.config.plugins)
        self.plugins.register(imported)
        # On a full disk the buttons show the contacts stored before; on_full says so.
        with contextlib.suppress(StoreFull):
            self.store.replace_contacts(
                "config",
                [(c.name, c.uri) for c in self.config.contacts],
                blf={c.uri for c in self.config.contacts if c.blf},
                conference={c.uri for c in self.config.contacts if c.conference},
            )
        self.load_contacts()
        self.audio.open(self.sip.ep)
        self._tasks.append(asyncio.get_running_loop().create_task(self._tick(), name="screen"))
        self.redraw()
        log.info(
            "phone started: %d contacts on %d buttons",
            len(self.buttons.contacts),
            self.buttons.size,
        )
        self.plugins.call("phone_started", phone=self.api)
        account = self.sip.account
        if self._registration_answered.is_set() and account is not None:
            self.plugins.call(
                "registration_changed",
                phone=self.api,
                registered=self.registered,
                code=account.last_code,
                reason=account.last_reason,
            )
        self.started.set()

    def stop(self) -> None:
        """Ask the phone to shut down (signal handlers call this)."""
        self._stop.set()

    async def shutdown(self) -> None:
        log.info("shutting down")
        try:
            await self.plugins.stop(phone=self.api)
            for task in self._tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:  # pjsua's objects must die before the lib, whatever failed above
            for timer in self._no_answer_timers.values():
                timer.cancel()
            self._no_answer_timers.clear()
            await self.sip.stop(before_destroy=self.audio.close)
        self.calls.clear()
        await self.board.close()
        self.store.close()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.redraw()

    # -- contacts -------------------------------------------------------
    def load_contacts(self) -> None:
        """Put every source's stored contacts on the buttons (by source, then position)."""
        self.set_contacts(
            [Contact(c.name, c.uri, c.blf, c.conference) for c in self.store.contacts()]
        )

    def set_contacts(self, contacts: list[Contact]) -> None:
        self.buttons.set_contacts(contacts)
        for call in self.calls:
            self._show_call_led(call.info)
        self.plugins.call("contacts_changed", phone=self.api, contacts=self.buttons.contacts)

    # -- buttons --------------------------------------------------------
    def press(self, button: str, long_press: bool) -> None:
        log.debug("%s press on %s", "long" if long_press else "short", button)
        if self.screen.dismiss_image():
            self.redraw()  # the press that takes an image away does nothing else
            return
        if self.plugins.call_first(
            "button_pressed", phone=self.api, button=button, long_press=long_press
        ):
            return
        if contact_index(button) is not None:
            contact = self.buttons.contact_for(button)
            if contact is None:
                self.screen.message(["(no contact)"], 1.5)
            elif long_press:
                self.screen.message(
                    [contact.name, contact.uri.removeprefix("sip:")], RESULT_SECONDS
                )
            else:
                self._contact_pressed(contact)
        elif button == "end":
            self._end()
        elif button == "answer":
            ringing = self._ringing_call()
            if ringing is not None:
                ringing.accept()
        elif button == "page":
            self.buttons.next_page()
            self.screen.message([f"Page {self.buttons.page + 1}/{self.buttons.pages}"], 1.5)
        elif button in ("volume_up", "volume_down"):
            level = self.audio.change_volume(1 if button == "volume_up" else -1)
            self.screen.message([f"Volume {level}%"], 1.5)
        elif button == "mute":
            self.audio.toggle_mute()
        elif button == "dnd":
            self.set_dnd(not self.dnd)
        self.redraw()

    def _contact_pressed(self, contact: Contact) -> None:
        call = self._call_with(contact.uri)
        if call is not None:
            if call.info.direction is Direction.IN and call.info.state is CallState.RINGING:
                call.accept()
            else:
                call.end()
            return
        if self._active_call() is not None:
            self.screen.message(["On a call:", "press end first"], 2.0)
            return
        self.dial(contact.uri, contact.name)

    def dial(self, uri: str, name: str | None = None) -> SipCall | None:
        """Call `uri`; None when pjsua refused to place the call (shown and logged)."""
        account = self.sip.account
        assert account is not None
        try:
            call = account.make_call(uri, name)
        except (self.sip.pj.Error, NoMediaRoom) as exc:
            log.warning("call to %s not placed: %s", uri, exc.reason)
            self.screen.message(["Call failed", exc.reason[:21]], RESULT_SECONDS)
            return None
        if call not in self.calls:
            self.call_changed(call)
        return call

    def _end(self) -> None:
        call = self._ringing_call()
        if call is None:
            call = self._active_call()
        if call is not None:
            self.end_call(call)

    def end_call(self, call: SipCall) -> None:
        """Refuse a call ringing here (`calls.reject_code`), hang up any other."""
        if call.info.direction is Direction.IN and call.info.state is CallState.RINGING:
            call.reject(self.config.calls.reject_code)
        else:
            call.end()

    def set_dnd(self, on: bool) -> None:
        self.dnd = on
        log.info("do not disturb %s", "on" if on else "off")
        self.plugins.call("dnd_changed", phone=self.api, on=on)

    # -- SIP events (SipEvents) -----------------------------------------
    def registration_changed(self, registered: bool, code: int, reason: str) -> None:
        self._registration_answered.set()
        self.registered = registered
        self.registration_text = (
            "registered" if registered else f"reg failed {code}" if code else "registering"
        )
        if self.on_status is not None:
            self.on_status(self.status_line(code, reason))
        self.redraw()
        if self.started.is_set():  # else `start` tells the plugins once they are loaded
            self.plugins.call(
                "registration_changed",
                phone=self.api,
                registered=registered,
                code=code,
                reason=reason,
            )

    def incoming_call(self, call: SipCall) -> None:
        info = call.info
        contact = self.buttons.find(info.remote_uri)
        if contact is not None:  # From may lack the port the contact's URI has
            info.remote_name, info.remote_uri = contact.name, contact.uri
        self.calls.append(call)
        busy = any(c is not call and c.info.active for c in self.calls)
        code: int | None
        if self.dnd:
            code = self.config.calls.reject_code
        elif busy and self.config.calls.second_call is SecondCall.BUSY:
            code = 486
        else:
            code = self.plugins.call_first("incoming_call", phone=self.api, call=replace(info))
        if code:
            log.info("incoming call from %s refused with %d", info.remote_uri, code)
            call.reject(code)
        else:
            call.ring()
            if contact is not None:
                self.buttons.show(contact.uri)
            self._show_call_led(info)
            self._no_answer_timers[call] = asyncio.get_running_loop().call_later(
                self.config.calls.no_answer_timeout_s, self._no_answer, call
            )
        self._update_tone()
        self.redraw()
        self.plugins.call("call_changed", phone=self.api, call=replace(info))

    def _no_answer(self, call: SipCall) -> None:
        self._no_answer_timers.pop(call, None)
        if call in self.calls and call.info.state is CallState.RINGING and not call.rejected:
            log.info("no answer from the user in %ss: 480", self.config.calls.no_answer_timeout_s)
            call.reject(480)

    def call_changed(self, call: SipCall) -> None:
        info = call.info
        if call not in self.calls:
            self.calls.append(call)
        self._show_call_led(info)
        if info.state is CallState.DISCONNECTED:
            self.calls.remove(call)
            timer = self._no_answer_timers.pop(call, None)
            if timer is not None:
                timer.cancel()
            for port in call.audio_ports:
                self.audio.forget(port)
            self._show_result(info)
        self._update_tone(info)
        self.redraw()
        self.plugins.call("call_changed", phone=self.api, call=replace(info))

    def _update_tone(self, ended: CallInfo | None = None) -> None:
        """Ring while a call waits for us, ringback while we wait, busy when refused."""
        live = [c.info for c in self.calls if c.info.active and not c.rejected]
        if any(i.state is CallState.CONFIRMED for i in live):
            tone = None
        elif any(i.direction is Direction.IN and i.state is CallState.RINGING for i in live):
            tone = "ring"
        elif any(i.direction is Direction.OUT and i.state is CallState.RINGING for i in live):
            tone = "ringback"
        elif (
            ended is not None
            and not ended.answered
            and ended.code in BUSY_CODES
            and ended.direction is Direction.OUT
        ):
            tone = "busy"
            asyncio.get_running_loop().call_later(RESULT_SECONDS, self._end_busy_tone)
        else:
            tone = None
        if tone != self._tone:
            self._tone = tone
            self.audio.play_tone(tone)

    def _end_busy_tone(self) -> None:
        if self._tone == "busy":
            self._tone = None
            self.audio.play_tone(None)

    def _audio_problem_changed(self, problem: str | None) -> None:
        """The sound device failed (text) or works again (None)."""
        self.screen.indicators["sound"] = "NOSOUND" if problem is not None else ""
        if problem is not None:
            self.screen.message(["No sound:", problem.removeprefix("Audio: ")], 5.0)
        self.redraw()

    def show_config_error(self, error: str) -> None:
        """A config the user put on the SD card was refused (phone.first_boot):
        the phone runs the last good one, says so in the footer for as long as
        it runs, and shows the error at start."""
        self.screen.indicators["config"] = "CFG!"
        lines = textwrap.wrap(error, CONFIG_ERROR_WIDTH)
        self.screen.message(["Config refused:", *lines], CONFIG_ERROR_SECONDS)
        log.error("the config on the SD card was refused: %s", error)
        self.redraw()

    def _store_full_changed(self, full: bool) -> None:
        """The data directory is full (True) or has room again: calls go on,
        only what would be saved (contacts, history) is lost meanwhile."""
        self.screen.indicators["store"] = "DISK!" if full else ""
        if full:
            self.screen.message(["Disk full:", "history not saved"], 5.0)
        self.redraw()

    def call_media_ready(self, call: SipCall) -> None:
        for media in call.audio_media():
            port = self.audio.connect(media)
            log.debug("call audio on bridge port %d", port)
            if port not in call.audio_ports:
                call.audio_ports.append(port)

    # -- what the user sees ---------------------------------------------
    def _show_call_led(self, info: CallInfo) -> None:
        led = CALL_LEDS.get((info.direction, info.state))
        if (
            led is None
            or info.code is not None
            and info.code >= 300
            and info.direction is Direction.IN
        ):
            self.buttons.clear_led(info.remote_uri, CALL_LAYER)
        else:
            self.buttons.set_led(info.remote_uri, led, CALL_LAYER)

    def _show_result(self, info: CallInfo) -> None:
        who = self.label(info)
        if info.answered:
            lines = ["Call ended", who, _mmss(info.duration())]
        elif info.direction is Direction.OUT and info.code and info.code >= 300:
            lines = [f"{info.code} {info.reason or ''}".strip(), who]
        elif info.direction is Direction.IN:
            lines = ["Missed call", who]
        else:
            lines = ["Call ended", who]
        self.screen.message(lines, RESULT_SECONDS)

    def label(self, info: CallInfo) -> str:
        """The contact's name, else the display name, else the URI."""
        contact = self.buttons.find(info.remote_uri)
        if contact is not None:
            return contact.name
        if info.remote_name:
            return info.remote_name
        return info.remote_uri.removeprefix("sip:")

    def redraw(self) -> None:
        for failed in self.plugins.disabled[self._disabled_shown :]:
            self.screen.message([f"Plugin {failed.name}", "disabled:", failed.reason], 5.0)
        self._disabled_shown = len(self.plugins.disabled)
        user = parse_sip_uri(self.config.account.uri).user or ""
        self.screen.status = f"{user} {self.registration_text}"
        call = self._active_call()
        if call is None:
            self.screen.body = [
                "Ready"
                if self.registered or self.registration_text == "direct"
                else "Not registered"
            ]
        else:
            info = call.info
            who = self.label(info)
            if info.direction is Direction.IN and info.state is CallState.RINGING:
                self.screen.body = ["Incoming call", who, "answer / end"]
            elif info.state is CallState.CALLING:
                self.screen.body = ["Calling", who]
            elif info.state in (CallState.RINGING, CallState.EARLY):
                self.screen.body = ["Ringing", who]
            else:
                self.screen.body = [who, f"In call {_mmss(info.duration())}"]
        flags = [f for f, on in (("DND", self.dnd), ("MUTE", self.audio.muted)) if on]
        page = f"p{self.buttons.page + 1}/{self.buttons.pages}" if self.buttons.pages > 1 else ""
        indicators = [text for text in self.screen.indicators.values() if text]
        self.screen.footer = " ".join([*flags, *indicators, page]).strip()
        self.screen.render()

    # -- queries --------------------------------------------------------
    def status_line(self, code: int | None = None, reason: str = "") -> str:
        """The phone's state in one line for an operator (systemctl status)."""
        account = self.config.account
        if account.registrar is None:
            return f"Running in direct mode as {account.uri}"
        if self.registered:
            return f"Registered as {account.uri}"
        if code:
            return f"Registration failing: {code} {reason}".strip()
        return f"Registering as {account.uri}"

    def _call_with(self, uri: str) -> SipCall | None:
        contact = self.buttons.find(uri)
        for call in self.calls:
            if (
                call.info.active
                and contact is not None
                and self.buttons.find(call.info.remote_uri) == contact
            ):
                return call
        return None

    def _active_call(self) -> SipCall | None:
        """The call the screen is about: a connected one first, else the newest."""
        live = [c for c in self.calls if c.info.active and not c.rejected]
        confirmed = [c for c in live if c.info.state is CallState.CONFIRMED]
        candidates = confirmed or live
        return candidates[-1] if candidates else None

    def _ringing_call(self) -> SipCall | None:
        for call in self.calls:
            if (
                call.info.direction is Direction.IN
                and call.info.state is CallState.RINGING
                and not call.rejected
            ):
                return call
        return None

    def _diagnostics(self) -> dict[str, Any]:
        """What `phone status` shows beyond the screen: the registration's last
        answer, subscriptions, plugins, refused requests and the uptime."""
        account = self.sip.account
        services = self.sip.services
        registration: dict[str, Any] = {
            "registrar": self.config.account.registrar,
            "state": self.registration_text,
            "code": account.last_code if account is not None else None,
            "reason": account.last_reason if account is not None else None,
        }
        plugins = [{"name": name, "state": "loaded"} for name in sorted(self.plugins.names)]
        plugins += [
            {"name": d.name, "state": "disabled", "cause": d.cause.value, "reason": d.reason}
            for d in self.plugins.disabled
        ]
        return {
            "registration": registration,
            "subscriptions": [
                {"event": s.event.value, "target": s.target, "state": s.state.value}
                for s in (services.subscriber.subscriptions if services is not None else ())
            ],
            "plugins": plugins,
            "refused": {
                "not_from_proxy": self.sip.proxy_only.refused if self.sip.proxy_only else 0,
                "no_media_room": self.sip.admission.refused if self.sip.admission else 0,
            },
            "call_slots": self.sip.call_slots_in_use(),
            "uptime_s": round(time.monotonic() - self._started_at, 1),
        }

    def describe(self) -> dict[str, Any]:
        """The control interface's `state` answer: the core's keys, then the plugins'."""
        state = {
            "started": self.started.is_set(),
            "registered": self.registered,
            "buttons": self.buttons.describe(),
            "screen": self.screen.lines(),
            "calls": [c.info.as_dict() | c.rtp_packets() for c in self.calls if c.info.active],
            "dnd": self.dnd,
            "muted": self.audio.muted,
            "volume": self.audio.volume,
            "sound": self.audio.stats(),
            **self._diagnostics(),
        }
        if not self.started.is_set():
            return state  # no plugins yet (and no plugin API to import while starting)
        for keys in self.plugins.collect("control_state", phone=self.api):
            for key, value in keys.items():
                state.setdefault(key, value)
        return state
