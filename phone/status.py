"""`phone status`: a running phone's state, from its control interface, for a person.

It asks for `state` once and prints the registration with its last answer,
the calls, the subscriptions, the sound counters, the plugins and the uptime:
what an operator wants to see first when a desk phone "does not work".
"""

from __future__ import annotations

from typing import Any

from phone.control import ControlClient

SOUND_COUNTERS = (
    "cycles",
    "deadline_misses",
    "late_cycles",
    "capture_overruns",
    "playback_underruns",
    "realignments",
    "drift_corrections",
)


def fetch_state(address: str, token: str | None) -> dict[str, Any]:
    """The phone's `state` answer; OSError when nothing listens, RuntimeError when refused."""
    client = ControlClient(address, timeout=5.0, token=token)
    try:
        state = client.state()
    finally:
        client.close()
    if not state.get("ok"):
        raise RuntimeError(state.get("error", "the phone refused the request"))
    return state


def format_status(state: dict[str, Any]) -> str:
    lines = [
        f"registration   {_registration(state.get('registration') or {})}",
        f"uptime         {_duration(state.get('uptime_s', 0))}",
    ]
    calls = state.get("calls") or []
    lines.append(f"calls          {len(calls) or 'none'}")
    lines += [
        f"  {c['remote']}  {c['state']} ({c['direction']}), "
        f"RTP {c.get('rtp_rx', 0)} in, {c.get('rtp_tx', 0)} out, "
        f"jitter {c.get('rtp_jitter_ms', 0)} ms (max {c.get('rtp_jitter_max_ms', 0)})"
        for c in calls
    ]
    lines.append(f"call slots     {state.get('call_slots', 0)} in use")
    subscriptions = state.get("subscriptions") or []
    lines.append(f"subscriptions  {len(subscriptions) or 'none'}")
    lines += [
        f"  {s['event']:<16} {s['target']}  {s['state']}"
        for s in sorted(subscriptions, key=lambda s: (s["event"], s["target"]))
    ]
    lines.append(f"sound          {_sound(state.get('sound'))}")
    plugins = state.get("plugins") or []
    lines.append(f"plugins        {len(plugins) or 'none'}")
    for plugin in plugins:
        if plugin["state"] == "loaded":
            lines.append(f"  {plugin['name']:<16} loaded")
        else:
            lines.append(f"  {plugin['name']:<16} disabled ({plugin['cause']}): {plugin['reason']}")
    refused = state.get("refused") or {}
    lines.append(
        f"refused        {refused.get('not_from_proxy', 0)} not from the proxy, "
        f"{refused.get('no_media_room', 0)} for lack of media sockets"
    )
    return "\n".join(lines)


def _registration(registration: dict[str, Any]) -> str:
    registrar = registration.get("registrar")
    if registrar is None:
        return "none (direct mode)"
    code = registration.get("code")
    answer = (
        f"last answer {code} {registration.get('reason', '')}".rstrip() if code else "no answer yet"
    )
    return f"{registration.get('state')} with {registrar}, {answer}"


def _sound(sound: dict[str, Any] | None) -> str:
    if sound is None:
        return "no ALSA devices (WAV files or none)"
    parts = [
        str(sound.get("state")),
        f"aec {sound.get('aec_backend') if sound.get('aec') else 'off'}",
    ]
    parts += [f"{name.replace('_', ' ')} {sound[name]}" for name in SOUND_COUNTERS if name in sound]
    if sound.get("last_error"):
        parts.append(f"last error: {sound['last_error']}")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days} d {text}" if days else text
