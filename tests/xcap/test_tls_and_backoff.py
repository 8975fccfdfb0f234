"""TLS is verified unless the caller trusts another CA; retries back off."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

from phone.payloads import resourcelists
from phone.payloads.resourcelists import ResourceLists
from phone.xcap.client import XcapClient
from phone.xcap.errors import XcapUnreachable

DOCUMENT = resourcelists.build(ResourceLists())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1."""
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return key, cert


async def _serve_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/resource-lists+xml\r\n"
            + f"Content-Length: {len(DOCUMENT)}\r\n\r\n".encode()
            + DOCUMENT
        )
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()


def fetch_over_tls(certificate: tuple[Path, Path], context: ssl.SSLContext | None) -> bytes:
    key, cert = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def main() -> bytes:
        server = await asyncio.start_server(_serve_once, "127.0.0.1", 0, ssl=server_context)
        port = server.sockets[0].getsockname()[1]
        try:
            client = XcapClient(
                f"https://127.0.0.1:{port}/xcap-root", "sip:a@x", ssl_context=context, retries=0
            )
            return (await client.get(client.document("resource-lists"))).body
        finally:
            server.close()

    return asyncio.run(main())


def test_an_unknown_certificate_is_refused_by_default(certificate: tuple[Path, Path]) -> None:
    with pytest.raises(XcapUnreachable, match="TLS: CERTIFICATE_VERIFY_FAILED"):
        fetch_over_tls(certificate, None)


def test_a_trusted_certificate_works(certificate: tuple[Path, Path]) -> None:
    context = ssl.create_default_context(cafile=str(certificate[1]))
    assert fetch_over_tls(certificate, context) == DOCUMENT
