"""Fixtures for the emulator's window tests: a private Xvfb per test."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from tests.conftest import _peer_missing
from tests.emulator.x11 import APT_LINE, Xvfb, missing_tools


def require_pygame() -> None:
    """pygame comes with the dev extra; without it the tests fail in CI, as a
    missing peer does, and skip elsewhere."""
    if importlib.util.find_spec("pygame") is None:
        _peer_missing("pygame is not installed: pip install -e '.[dev]'")


@pytest.fixture
def xvfb() -> Iterator[Xvfb]:
    """An X server of the test's own; missing tools fail in CI, as the peers do."""
    require_pygame()
    missing = missing_tools()
    if missing:
        _peer_missing(f"{', '.join(missing)} not installed; as root: {APT_LINE}")
    server = Xvfb()
    yield server
    server.stop()
