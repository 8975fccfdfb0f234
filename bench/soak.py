"""A soak of calls between two phones through Kamailio: time per call, and what stays.

alice calls bob `--calls` times after `--warmup` calls, each call answered at
once and hung up at once (`tests/faults/soak.py`). It prints the wall time,
calls per second, and per phone the RSS, open file descriptors and pjsua call
slots after the warm-up and at the end. Both phones must stop with status 0.
The suite's `tests/faults/test_soak.py` runs the same soak with its limits.

Run: python bench/soak.py [--calls 1000] [--warmup 300]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine  # noqa: E402
from tests.faults.soak import soak, start_pair  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.phones import PhoneFactory  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    print(machine())
    with Kamailio() as server, tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        factory = PhoneFactory(Path(tmp))
        try:
            alice, bob = start_pair(server, factory)
            result = soak(alice, bob, args.calls, args.warmup)
        finally:
            factory.stop_all()  # PhoneExitError unless both exit 0
    print(result.summary())
    print(
        f"{args.calls / result.seconds:.1f} calls/s, {1000 * result.seconds / args.calls:.0f} ms a call"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
