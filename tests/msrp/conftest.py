"""Fixtures for the MSRP stack: a self-signed certificate pair, made with the
openssl command line (the `cryptography` package is not a dependency)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from phone.msrp.tls import TlsSettings


def make_certificate(directory: Path, name: str, alt_name: str | None = None) -> TlsSettings:
    """A fresh self-signed certificate and key for `name` (CN and DNS name)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName={alt_name or 'DNS:' + name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return TlsSettings(cert, key)


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[TlsSettings, TlsSettings]:
    return make_certificate(tmp_path, "alice.test"), make_certificate(tmp_path, "bob.test")
