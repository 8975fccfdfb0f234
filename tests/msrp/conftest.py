"""Fixtures for the MSRP stack: a self-signed certificate pair, made with the
openssl command line (the `cryptography` package is not a dependency)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from phone.msrp.tls import TlsSettings, self_signed


def make_certificate(directory: Path, name: str, alt_name: str | None = None) -> TlsSettings:
    """A fresh self-signed certificate and key for `name` (CN and DNS name)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return self_signed(directory, name, alt_name)


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[TlsSettings, TlsSettings]:
    return make_certificate(tmp_path, "alice.test"), make_certificate(tmp_path, "bob.test")
