#!/usr/bin/env python
"""The pure-Python cost of one Infobip batch, without a database: the adapter reading it, then
ingestion preparing its receipts (dedupe keys, what each writes on its message). The minimum of
N runs of each, so that on a shared machine two trees can be compared run after run where the
wall-clock benches (bench/profile_batch.py) drown a few milliseconds in other processes' load.

    .venv/bin/python bench/batch_python.py [--batch 1000] [--runs 60]

Compare two trees by running it from each (PYTHONPATH=<tree>), alternated a few times.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest_throughput import infobip_report  # noqa: E402


def best_ms(work: Callable[[], object], runs: int) -> float:
    work()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return 1000 * min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1000, help="reports in the batch (default 1000)")
    parser.add_argument("--runs", type=int, default=60, help="runs of each step; the minimum is shown (default 60)")
    args = parser.parse_args()
    # Settings that need no service: nothing here opens a connection.
    os.environ["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings_test"
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/unused")
    import django

    django.setup()
    gc.freeze()  # as dlrconsole.wsgi does
    from django.utils import timezone

    from receipts import ingestion
    from receipts.providers.base import WebhookRequest
    from receipts.providers.infobip import adapter

    reports = [infobip_report(1, i) for i in range(args.batch)]
    body = json.dumps({"results": reports}, separators=(",", ":")).encode()
    request = WebhookRequest(
        method="POST", url="http://127.0.0.1/hooks/bench/", headers={"content-type": "application/json"}, body=body
    )
    events = adapter.parse(request)
    now = timezone.now()
    parse = best_ms(lambda: adapter.parse(request), args.runs)
    prepare = best_ms(lambda: ingestion._prepare_batch("infobip", events, now=now, raw_body=""), args.runs)
    print(
        f"{ROOT}: batch of {args.batch}, minimum of {args.runs} runs: adapter.parse {parse:.2f} ms, "
        f"ingestion._prepare_batch {prepare:.2f} ms; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
