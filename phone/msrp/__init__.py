"""MSRP (RFC 4975) and MSRP relays (RFC 4976) in asyncio, for chat and file
transfer sessions; pjsua2 has no MSRP, so the phone carries its own.

One module per concept, from the wire up:

- `uri`: msrp:// and msrps:// URIs, paths, comparison (section 6.1).
- `error`: `MsrpError`, each defect with the status that answers it.
- `message`: frames, their typed headers (Byte-Range, Status, reports) and
  their bytes.
- `parser`: the streaming parser: bytes in, head / body part / end out.
- `chunks`: cutting messages into chunks and reassembling them into sinks
  (memory for text, disk for files).
- `connection`: one TCP or TLS stream: transactions, routing, limits.
- `session`: one session: set-up per a=setup, sending, receiving, REPORTs.
- `endpoint`: the listening port, connection reuse, routing by URI.
- `relay`: AUTH at a relay, Use-Path, refresh.
- `tls`: certificate fingerprints (RFC 4572) and TLS contexts.
- `sdp`: RFC 5547 file attributes, max-size and fingerprints of m=message
  (the rest of the message line is `phone.sip.sdp`).

The payloads chat carries are in `phone.payloads`: `cpim`, `iscomposing`
and `imdn`.

A session from SDP to messages (the SIP side is `phone.sip.sdp`)::

    endpoint = MsrpEndpoint(host, port, tls=settings)   # once; then await endpoint.listen()
    uri = endpoint.new_uri()                  # or relay.new_uri() after relay.connect()
    ours = (uri,)                             # or (*relay.use_path, uri): our a=path
    # ... offer or answer with `ours`; the peer's a=path comes back ...
    session = endpoint.session(uri, parse_path(peer_path), on_message=show)
    # (with a relay: relay.session(parse_path(peer_path), local_uri=uri, ...))
    await session.start(active=negotiated.we_connect)
    await session.send_message("message/cpim", cpim.build(...))
"""
