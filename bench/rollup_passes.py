#!/usr/bin/env python
"""Rollup passes in a loop, as beat runs them in production: every --interval seconds a run of
`receipts.rollups.maintain.roll_up_all` for at most DLR_ROLLUP_PASS_SECONDS. Started by
bench/ingest_throughput.py beside gunicorn during the project's runs, so the webhook is
measured with rollup maintenance running. Stops on SIGTERM or after --max-seconds, then
prints one JSON line: runs, messages counted, seconds spent in passes.

This is a benchmark helper, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

stopping = False


def stop(*_: object) -> None:
    global stopping
    stopping = True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between runs' starts (beat: 5)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop after this long at the latest")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    import django

    django.setup()
    from django.conf import settings

    from receipts.rollups import maintain

    deadline = time.monotonic() + args.max_seconds
    runs = counted = 0
    busy = 0.0
    print(json.dumps({"ready": True}), flush=True)
    while not stopping and time.monotonic() < deadline:
        started = time.monotonic()
        counted += maintain.roll_up_all(seconds=settings.DLR_ROLLUP_PASS_SECONDS)
        busy += time.monotonic() - started
        runs += 1
        # Sleep in short steps so a SIGTERM ends the loop promptly.
        while not stopping and time.monotonic() < min(started + args.interval, deadline):
            time.sleep(0.05)
    print(json.dumps({"runs": runs, "counted": counted, "busy_s": round(busy, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
