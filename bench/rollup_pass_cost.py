#!/usr/bin/env python
"""What a rollup pass costs: the one-statement pass (PostgreSQL) against the same arithmetic in
Python (the demo's SQLite path), on the same changes, in the same run.

A fresh loopback database gets N messages submitted over the last hour across routes
(3 countries x 3 networks x 3 flows); then three waves of changes are counted, as receipts
bring them: the first count (no snapshot yet), all "sent", then final (one in five undelivered
with a reason). Each wave is counted once by each implementation, from the same state (the
rollup tables are copied aside and restored between the two), and the rollups are checked
against a full recount after each.

    .venv/bin/python bench/rollup_pass_cost.py [--messages 5000] [--spread-seconds 3599] [--pg-url postgres://postgres@127.0.0.1:5432/postgres]

Prints wall seconds and the process's own CPU seconds per wave and implementation, and the
ratio Python / SQL. Exit status 1 when a recount disagrees.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest_throughput import create_database, database_url, drop_database, manage  # noqa: E402

TABLES = (
    "receipts_rolluppending",
    "rollups_snapshot",
    "rollups_rollup",
    "rollups_rollupreason",
    "rollups_coarserollup",
    "rollups_coarserollupreason",
)
WAVES = {
    "first count": "UPDATE receipts_message SET network = network",
    "sent": "UPDATE receipts_message SET status = 'sent', first_receipt_at = submitted_at + interval '2 s'",
    "final": (
        "UPDATE receipts_message SET status = CASE WHEN id % 5 = 0 THEN 'undelivered' ELSE 'delivered' END,"
        " reason = CASE WHEN id % 5 = 0 THEN 'absent_subscriber' ELSE '' END,"
        " error_class = CASE WHEN id % 5 = 0 THEN 'temporary' ELSE '' END,"
        " final_at = submitted_at + interval '7 s'"
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="dlrconsole_bench_rollup_pass")
    # An hour is a quiet console's shape (a few messages per minute and route); two minutes is
    # a busy one's, where a pass's changes share their minutes (the batch bench's traffic).
    parser.add_argument("--spread-seconds", type=int, default=3599, help="messages submitted over this many seconds")
    args = parser.parse_args()
    if not 1 <= args.messages <= 200_000:
        parser.error("--messages: 1 to 200,000")
    if not 0 <= args.spread_seconds <= 86_399:
        parser.error("--spread-seconds: 0 to 86,399")
    create_database(args.pg_url, args.database)
    try:
        env = {**os.environ, "DATABASE_URL": database_url(args.pg_url, args.database)}
        # The test settings: a secret key of their own, and nothing here depends on the rest.
        env["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings_test"
        manage(env, "migrate", "--noinput", "-v", "0")
        os.environ.update(env)
        return run(args.messages, args.spread_seconds)
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        drop_database(args.pg_url, args.database)


def run(n: int, spread: int) -> int:
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from receipts.models import Connection, Message
    from receipts.rollups import maintain, recount

    route = Connection.objects.create(name="bench", slug="bench", provider="simulator")
    now = timezone.now()
    rnd = random.Random(12)
    Message.objects.bulk_create(
        (
            Message(
                connection=route,
                provider_message_id=f"bench-{i}",
                recipient="+33612345678",
                country=rnd.choice(["FR", "ES", "DE"]),
                network=rnd.choice(["20801", "20810", ""]),
                flow=rnd.choice(["login-otp", "alerts", ""]),
                submitted_at=now - timedelta(seconds=rnd.randint(0, spread)),
            )
            for i in range(n)
        ),
        batch_size=5000,
    )

    def count_wave(in_database: bool) -> tuple[float, float]:
        maintain.COUNT_IN_DATABASE = in_database
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO receipts_rolluppending (message_id) SELECT id FROM receipts_message")
        wall, cpu = time.perf_counter(), time.process_time()
        maintain.roll_up_all(seconds=600, now=now)
        return time.perf_counter() - wall, time.process_time() - cpu

    def tables(action: str) -> None:
        with connection.cursor() as cursor:
            for table in TABLES:
                if action == "save":
                    cursor.execute(f"DROP TABLE IF EXISTS saved_{table}")
                    cursor.execute(f"CREATE TABLE saved_{table} AS SELECT * FROM {table}")
                else:
                    cursor.execute(f"DELETE FROM {table}")
                    cursor.execute(f"INSERT INTO {table} SELECT * FROM saved_{table}")

    print(f"rollup pass cost: {n} messages over {spread + 1} s, 27 routes; load average {os.getloadavg()[0]:.2f}")
    print(f"{'wave':<12} {'implementation':<16} {'wall s':>8} {'own CPU s':>10}  recount")
    failed = False
    for wave, change in WAVES.items():
        with connection.cursor() as cursor:
            cursor.execute(change)
        tables("save")
        figures = {}
        for label, in_database in (("Python", False), ("one statement", True)):
            tables("restore")
            wall, cpu = count_wave(in_database)
            problems = recount.check(now=now)
            failed |= bool(problems)
            figures[label] = wall
            print(f"{wave:<12} {label:<16} {wall:8.3f} {cpu:10.3f}  {'ok' if not problems else problems[:3]}")
        print(f"{'':<12} {'Python / SQL':<16} {figures['Python'] / figures['one statement']:8.1f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
