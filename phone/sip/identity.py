"""Who a request we build ourselves comes from: AOR, Contact, credentials, outbound route.

pjsua keeps these inside its account; requests sent through `phone.sip.rawsip`
(SUBSCRIBE, chat-only INVITE) carry them explicitly (RFC 3261 sections 8.1.1,
22 and 16.12.1). `Subscriber.for_account` fills one from a pjsua2 account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phone.sip.digest import Credentials


@dataclass(frozen=True)
class Identity:
    """Who subscribes: the account's address of record, Contact and credentials."""

    aor: str  # e.g. sip:alice@example.test
    contact: Callable[[str], str]  # target URI -> Contact header value
    credentials: Credentials | None = None
    route: tuple[str, ...] = ()  # the account's outbound proxies, as Route values
