"""The image boot test builds an image and boots it under TCG: minutes, as
root. It runs from `make image-test` (IMAGE_TEST=1), not in `make test`."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("IMAGE_TEST") == "1" else ["test_*.py"]
