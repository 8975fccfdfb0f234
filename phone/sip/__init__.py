"""The SIP layer over pjsua2.

pjsua2 runs accounts, registration and audio calls (`endpoint`, `account`,
`call`). What it does not expose is closed here, behind plain Python objects:

- `rawsip`: a pjsip module (ctypes) that sees incoming requests before the
  dialog layer, and a sender of requests whose dialog we keep; a start-up
  self-test derives and checks the build-dependent offsets.
- `subscription`: RFC 6665 subscriptions to presence (with RLS eventlist),
  presence.winfo, dialog, conference and xcap-diff, with notifications parsed
  once by `phone.payloads` (`packages`).
- `sdp`, `message_stream`: the m=message line of MSRP sessions inside audio
  calls; `chat_session`: chat-only INVITEs, answered and offered.
- `request`: MESSAGE and REFER outside a dialog (with the REFER's progress);
  `pager`: incoming MESSAGEs to one receiver.
- `identity`, `message`, `digest`: who sends, SIP message text, digest authentication.
"""
