"""The one error of the MSRP stack: a defect and the status that answers it.

Every malformed or unwelcome input becomes an `MsrpError` carrying the RFC
4975 section 10 status a request gets for it (400 bad request, 413 too large,
415 unsupported type, 481 no such session, 506 bound elsewhere), so the
connection can answer and go on, or close, without an exception escaping.
"""

from __future__ import annotations

REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    413: "Message Too Large",
    415: "Unsupported Media Type",
    423: "Interval Out-of-Bounds",
    481: "No Such Session",
    501: "Not Implemented",
    506: "Session Bound To Another Connection",
}


class MsrpError(Exception):
    """`status` answers the request; `reason` is for the log and the comment."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class MsrpTimeout(MsrpError):
    """No response within the transaction timeout (RFC 4975 section 7.1: 408)."""

    def __init__(self, reason: str) -> None:
        super().__init__(408, reason)


class MsrpClosed(MsrpError):
    """The connection under a session or a transaction is gone."""

    def __init__(self, reason: str) -> None:
        super().__init__(481, reason)
