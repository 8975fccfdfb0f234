"""Fixtures for the emulator's window tests: a private Xvfb per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import _peer_missing
from tests.emulator.x11 import APT_LINE, Xvfb, missing_tools


@pytest.fixture
def xvfb() -> Iterator[Xvfb]:
    """An X server of the test's own; missing tools fail in CI, as the peers do."""
    pytest.importorskip("pygame")
    missing = missing_tools()
    if missing:
        _peer_missing(f"{', '.join(missing)} not installed; as root: {APT_LINE}")
    server = Xvfb()
    yield server
    server.stop()
