"""Bursts of missed calls: the INVITE/CANCEL rate a phone survives, and what it refuses.

One phone in direct mode is flooded by a raw UDP caller (`tests.call_flood`):
at each rate, for `--seconds`, a new call every 1/rate s, an INVITE with one
audio line and its CANCEL right behind it; then the caller sends again what
is unanswered (as UDP callers do) until every call has its final answer.
Per rate it prints how many calls were missed (487), refused for lack of
media sockets (486 with Retry-After), the rate the phone answered at, and
whether it is still alive. Last, offers of 16 audio lines (32 sockets each)
at 10 calls/s. The phone is stopped at the end and must exit 0.

Run: python bench/burst.py [--seconds 3] [--rates 10,50,60,70,80,100,200,500,0]
(rate 0: as fast as the caller can send)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.core import cpu_seconds, machine  # noqa: E402
from phone.demo import free_port  # noqa: E402
from phone.remote import RemotePhone  # noqa: E402
from phone.sip.admission import MAX_LINES  # noqa: E402
from tests.call_flood import CallFlood  # noqa: E402
from tests.phones import render_config  # noqa: E402

PAUSE_S = 1.0  # between rates: the sockets of the last calls come back


def flood(phone: RemotePhone, uri: str, rate: float, seconds: float, lines: int) -> str:
    caller = CallFlood(uri, audio_lines=lines)
    assert phone.process is not None
    cpu_before = cpu_seconds(phone.process.pid)
    try:
        rounds = int(rate * seconds) if rate else 1000
        result = caller.run(rounds, interval=1 / rate if rate else 0.0)
        caller.finish(timeout=30)
    finally:
        caller.close()
    alive = phone.process.poll() is None
    cpu = cpu_seconds(phone.process.pid) - cpu_before if alive else float("nan")
    refused = len(result.told_when)  # 486 with Retry-After: refused for lack of room
    answered = result.answered
    return (
        f"| {f'{rate:g}/s' if rate else 'max'} | {lines} | {result.sent} "
        f"| {result.sent / result.seconds:.0f}/s | {result.finals[487]} | {refused} "
        f"({100 * refused / max(1, answered):.0f} %) | {result.sent - answered} "
        f"| {cpu:.2f} s | {'yes' if alive else f'NO (exit {phone.process.returncode})'} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rates", default="10,50,60,70,80,100,200,500,0")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        uri = f"sip:bob@127.0.0.1:{free_port()}"
        config = render_config({"uri": uri}, [], workdir, "bob")
        phone = RemotePhone("bob", config, workdir).start()
        print(
            "| rate asked | audio lines | calls | rate sent | missed (487) "
            "| refused (486 + Retry-After) | unanswered | phone CPU | alive |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        try:
            plan = [(rate, 1) for rate in rates] + [(10.0, MAX_LINES)]
            for rate, lines in plan:
                print(flood(phone, uri, rate, args.seconds, lines), flush=True)
                if phone.process is None or phone.process.poll() is not None:
                    print(phone.log_tail(5))
                    return 1
                time.sleep(PAUSE_S)
            bursts = phone.log_path.read_text().count("too many calls at once")
            print(f"refusal bursts logged: {bursts}")
        finally:
            code = phone.stop()
        print(f"phone exit status: {code}")
        return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
