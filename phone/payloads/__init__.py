"""The XML and text payloads of SIP SIMPLE, one module per document and its RFC.

- `pidf` (RFC 3863, RFC 4479) with `rpid` (RFC 4480, RFC 4482): presence.
- `rlmi` (RFC 4662): resource-list NOTIFYs, multipart/related bodies, `ListView`.
- `watcherinfo` (RFC 3858): who watches our presence.
- `dialoginfo` (RFC 4235): the calls of a monitored user (busy lamps).
- `conference` (RFC 4575): conference rooms and `ConferenceRoster`.
- `xcapdiff` (RFC 5874): which XCAP documents changed.
- `iscomposing` (RFC 3994): typing indications.
- `cpim` (RFC 3862): the Message/CPIM envelope of chat messages.
- `sipfrag` (RFC 3420): the status line a REFER's progress NOTIFY carries (RFC 3515).

Each module parses network bytes into frozen dataclasses and enums (`parse`)
and builds the documents we send (`build`; sipfrag is only read). Shared pieces: `xml` is the one
hardened lxml parser (no entities, no DTD, no network, no DOCTYPE, size caps),
`error.PayloadError` is the only exception a parser raises, and `sequence`
holds the version rules of the documents that send deltas.
"""

from phone.payloads.error import PayloadError
from phone.payloads.sequence import VersionGap

__all__ = ["PayloadError", "VersionGap"]
