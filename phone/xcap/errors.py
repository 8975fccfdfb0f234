"""What can go wrong with an XCAP server, as types a caller can tell apart.

Every failure of `XcapClient` is an `XcapError` whose message is one line for
the operator's log (the client logs it once, callers need not log it again).
The subclasses say what to do next: retry later (`XcapUnreachable`), re-read
(`XcapPreconditionFailed`), fix the document (`XcapConflictError`), fix the
settings (`XcapAuthError`), or give up on this answer (`XcapBadAnswer`).
"""

from __future__ import annotations

from phone.payloads.xcaperror import XcapConflict


class XcapError(Exception):
    """Any XCAP failure; `str()` is the one log line."""


class XcapUnreachable(XcapError):
    """No answer: connection refused, DNS, TLS, a time-out, a malformed HTTP answer."""


class XcapBadAnswer(XcapError):
    """An answer we refuse: too large, not XML, the wrong content type, a redirect
    loop, a document that does not parse."""


class XcapStatusError(XcapError):
    """The server answered with a status the request cannot use."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class XcapNotFound(XcapStatusError):
    """404: no such document, element or attribute (RFC 4825 §8.2.1)."""


class XcapAuthError(XcapStatusError):
    """401 after answering the challenge, or 403: wrong credentials or not allowed."""


class XcapPreconditionFailed(XcapStatusError):
    """412: the ETag no longer matches; another writer changed the document."""


class XcapConflictError(XcapStatusError):
    """409 (RFC 4825 §11): the change would break the document; `conflict` says how
    when the server sent an `application/xcap-error+xml` body."""

    def __init__(self, message: str, conflict: XcapConflict | None) -> None:
        super().__init__(message, 409)
        self.conflict = conflict
