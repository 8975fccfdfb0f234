"""What the core and the plugins know about a call, independent of pjsua2.

`CallInfo` is the one object a call event carries across the house: the SIP
layer fills it, the core decides with it, plugins read it (hook `call_changed`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class CallState(StrEnum):
    CALLING = "calling"  # INVITE sent, nothing heard back yet
    RINGING = "ringing"  # 180 heard (out) or our phone rings (in)
    EARLY = "early"  # early media (183 with SDP)
    CONFIRMED = "confirmed"
    DISCONNECTED = "disconnected"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


@dataclass
class CallInfo:
    id: int
    remote_uri: str
    remote_name: str | None
    direction: Direction
    state: CallState
    started_at: float = field(default_factory=time.time)
    connected_at: float | None = None
    ended_at: float | None = None
    code: int | None = None
    reason: str | None = None
    # The remote Contact (a focus's is its conference URI, RFC 4579 §3.3) and
    # whether it carries `isfocus`; known once the remote side answered.
    remote_contact: str | None = None
    isfocus: bool = False

    @property
    def active(self) -> bool:
        return self.state is not CallState.DISCONNECTED

    @property
    def answered(self) -> bool:
        return self.connected_at is not None

    def duration(self, now: float | None = None) -> float:
        """Seconds since the call was answered (0 before), up to its end."""
        if self.connected_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else (now or time.time())
        return max(0.0, end - self.connected_at)

    def as_dict(self) -> dict[str, str]:
        return {
            "remote": self.remote_uri,
            "state": self.state.value,
            "direction": self.direction.value,
        }
