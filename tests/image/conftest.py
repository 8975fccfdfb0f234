"""The image boot tests build an image and boot it under TCG: minutes, as
root. They run from `make image-test` (IMAGE_TEST=1: the amd64 twin, in CI)
and `make image-test-arm64` (IMAGE_TEST=arm64: the Pi's image, opt-in, never
in CI), not in `make test`."""

from __future__ import annotations

import os

_MODULES = {"1": "test_boot.py", "arm64": "test_boot_arm64.py"}
_chosen = _MODULES.get(os.environ.get("IMAGE_TEST", ""))
collect_ignore_glob = [name for name in _MODULES.values() if name != _chosen]
