"""XCAP (RFC 4825): the user's documents on the server, read and written over HTTP.

- `selector`: XCAP URIs: document and node selectors, escaping, namespace bindings.
- `client`: `XcapClient`: GET/PUT/DELETE with ETags, 412 re-reads, 409 bodies,
  Digest/Basic, redirects, retries; typed `fetch`/`modify`.
- `applications`: the auids the phone uses and their payload modules.
- `discovery`: the XCAP root of a domain when the settings give none.
- `http`: one HTTP/1.1 exchange over asyncio streams, framed by h11.
- `errors`: `XcapError` and what each kind means for the caller.
- `backoff`: exponential back-off with jitter.

The documents themselves are in `phone.payloads` (`resourcelists`,
`rlsservices`, `presrules`, `xcapcaps`, `xcapdirectory`, `xcaperror`,
`xcapdiff`).

HTTP is h11 (the framing library under httpx) over asyncio streams, not httpx:
on the Pi Zero 2 W budget (64 MiB idle RSS with every plugin on, 55.5 MiB
measured for the core) importing httpx and making a client costs 8.2 MiB
(aiohttp 14.3 MiB), h11 0.5 MiB; an https root adds the TLS context (2.3 MiB)
either way. Measured in `bench/xcap.py`.
"""
