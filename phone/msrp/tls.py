"""TLS for msrps: URIs (RFC 4975 section 14.1) and certificate fingerprints in
SDP (RFC 4572 `a=fingerprint`).

MSRP endpoints use self-signed certificates, so a peer's certificate is
trusted by its fingerprint from the SDP, which the SIP signalling
authenticated; without one (a relay), the usual CA and host-name checks
apply unless the settings turn them off. Python's ssl cannot accept an
unverified client certificate, so a passive (server) end does not ask for
one: the fingerprint is checked by whoever connects.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from phone.msrp.error import MsrpError

_HASHES = {
    "sha-1": "sha1",
    "sha-224": "sha224",
    "sha-256": "sha256",
    "sha-384": "sha384",
    "sha-512": "sha512",
}
_FINGERPRINT = re.compile(r"([A-Za-z0-9-]+) ((?:[0-9A-Fa-f]{2}:)*[0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Fingerprint:
    """`a=fingerprint:<hash-func> <AB:CD:...>` (RFC 4572 section 5)."""

    algorithm: str  # lower case, e.g. "sha-256"
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> Fingerprint:
        match = _FINGERPRINT.fullmatch(text.strip())
        if match is None or match[1].lower() not in _HASHES:
            raise MsrpError(400, f"bad or unsupported fingerprint {text[:60]!r}")
        return cls(match[1].lower(), bytes.fromhex(match[2].replace(":", "")))

    @classmethod
    def of(cls, certificate_der: bytes, algorithm: str = "sha-256") -> Fingerprint:
        return cls(algorithm, hashlib.new(_HASHES[algorithm], certificate_der).digest())

    def matches(self, certificate_der: bytes) -> bool:
        return Fingerprint.of(certificate_der, self.algorithm).digest == self.digest

    def __str__(self) -> str:
        return f"{self.algorithm.upper()} {self.digest.hex(':').upper()}"


@dataclass(frozen=True)
class TlsSettings:
    """Our certificate and key (PEM), and whether peers without a fingerprint
    must present a certificate valid for their host name."""

    certfile: Path
    keyfile: Path
    verify_without_fingerprint: bool = True
    cafile: Path | None = None

    def fingerprint(self, algorithm: str = "sha-256") -> Fingerprint:
        """Ours, for `a=fingerprint` in our SDP."""
        der = ssl.PEM_cert_to_DER_cert(self.certfile.read_text())
        return Fingerprint.of(der, algorithm)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certfile, self.keyfile)
        return context


def client_context(settings: TlsSettings | None, fingerprint: Fingerprint | None) -> ssl.SSLContext:
    """The context to connect with. With a fingerprint any certificate passes
    the handshake and `check_peer` decides; without one, CA and host name are
    checked (unless `settings` turn that off). Our certificate goes along when
    we have one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings is not None:
        context.load_cert_chain(settings.certfile, settings.keyfile)
    if fingerprint is None and (settings is None or settings.verify_without_fingerprint):
        if settings is not None and settings.cafile is not None:
            context.load_verify_locations(settings.cafile)
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def check_peer(certificate_der: bytes | None, fingerprint: Fingerprint) -> None:
    """Raise `MsrpError` unless the peer's certificate has the SDP's fingerprint."""
    if certificate_der is None:
        raise MsrpError(403, "the peer presented no certificate")
    if not fingerprint.matches(certificate_der):
        raise MsrpError(403, f"the peer's certificate does not match {fingerprint}")
