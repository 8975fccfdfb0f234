"""XCAP (RFC 4825): the user's documents on the server, read and written over HTTP.

- `selector`: XCAP URIs: document and node selectors, escaping, namespace bindings.
- `client`: `XcapClient`: GET/PUT/DELETE with ETags, 412 re-reads, 409 bodies,
  Digest/Basic, redirects, retries; typed `fetch`/`modify`.
- `applications`: the auids the phone uses and their payload modules.
- `contacts`: the contacts of a resource list, references into the same
  document followed (Blink's and OMA's layouts).
- `discovery`: the XCAP root of a domain when the settings give none.
- `http`: one HTTP/1.1 exchange over asyncio streams, framed by h11.
- `errors`: `XcapError` and what each kind means for the caller.

The documents themselves are in `phone.payloads` (`resourcelists`,
`rlsservices`, `presrules`, `xcapcaps`, `xcapdirectory`, `xcaperror`,
`xcapdiff`).

HTTP is h11 (the framing library under httpx) over asyncio streams, not httpx:
the firmware must fit a Pi Zero 2 W at 64 MiB idle RSS with every plugin on,
and the core measured 55.5 MiB. Over what the core has loaded anyway,
importing httpx and making a client costs 6.5 MiB (aiohttp 13.2 MiB), h11
0.2 MiB plus the TLS context an https root needs (1.3 MiB, made only then);
all of phone.xcap with its documents 2.4 MiB. Figures: bench/xcap.py.
"""
