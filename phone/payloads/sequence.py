"""Version sequencing shared by the documents that send deltas.

RLMI (RFC 4662 §5), watcherinfo (RFC 3858 §4), dialog-info (RFC 4235)
and conference-info (RFC 4575) number their notifications: each one is one
more than the last. A repeated or older version is discarded; a partial-state
document that skips a version means a lost notification, so local state is
unknown and the subscriber must re-SUBSCRIBE. A full-state document replaces
everything, so it is accepted after a gap.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from phone.payloads.error import PayloadError


class DocumentState(StrEnum):
    """Whether a notification carries the whole state or only what changed."""

    FULL = "full"
    PARTIAL = "partial"


class VersionGap(PayloadError):
    """A partial-state notification cannot be applied: re-SUBSCRIBE for full state.

    `expected` is None when no full-state document was seen yet.
    """

    def __init__(self, document: str, expected: int | None, received: int) -> None:
        wanted = "a full-state document" if expected is None else f"version {expected}"
        super().__init__(
            document, f"partial version {received} received, {wanted} expected: re-subscribe"
        )
        self.expected = expected
        self.received = received


def accept(document: str, current: int | None, received: int, *, full_state: bool) -> bool:
    """Whether to apply a notification: False for a stale one, VersionGap for a gap."""
    if current is not None and received <= current:
        return False
    if full_state:
        return True
    if current is None or received != current + 1:
        raise VersionGap(document, None if current is None else current + 1, received)
    return True


class Versioned(Protocol):
    """A numbered document: watcherinfo, dialog-info, conference-info."""

    @property
    def version(self) -> int: ...

    @property
    def state(self) -> DocumentState: ...


def stale(document: str, current: Versioned | None, update: Versioned) -> bool:
    """True when `update` is older than `current`, which then stays as it is;
    VersionGap when a partial `update` skips a version."""
    return not accept(
        document,
        None if current is None else current.version,
        update.version,
        full_state=update.state is DocumentState.FULL,
    )
