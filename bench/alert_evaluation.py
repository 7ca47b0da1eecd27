#!/usr/bin/env python
"""How long one round of alert-rule evaluation takes: 1,000 rules (by default) over rollups
holding a day of minute rows and eight days of hour rows (--rows minute rows in all; each counts
1-20 messages, so 1,000,000 rows stand for about 10 million messages), in a fresh PostgreSQL
database that is dropped afterwards. The rules mix every metric, scopes (none, connection,
country, flow and their pairs) and windows (5 minutes to 6 hours). The figure is the median of
--rounds timed rounds after one warm-up; the goal is under a second.

    .venv/bin/python bench/alert_evaluation.py [--rows 1000000] [--rules 1000] [--rounds 5]

This is a benchmark, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_throughput import create_database, database_url, drop_database, is_loopback

CONNECTIONS, COUNTRIES, NETWORKS, FLOWS = 20, 30, 3, 5
WINDOWS = [5, 15, 30, 60, 180, 360]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="minute rollup rows (default 1,000,000)")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="dlrconsole_alerts_bench", help="the bench database; DROPPED")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if not is_loopback(urlsplit(args.pg_url).hostname or ""):
        sys.exit("refusing a non-loopback PostgreSQL URL")
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings_demo"
    create_database(args.pg_url, args.database)
    os.environ["DATABASE_URL"] = database_url(args.pg_url, args.database)
    try:
        return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.pg_url, args.database)


def fill_rollups(rows: int) -> int:
    """Minute rows over the last day, hour rows (their sums, and a week earlier) over eight days;
    RollupReason rows for the failures; the coarse levels of both. Returns the messages the
    minute rows count."""
    from django.db import connection

    from receipts.rollups.figures import COUNT_COLUMNS

    others = [c for c in COUNT_COLUMNS if c not in {"messages", "status_delivered", "status_undelivered",
                                                     "class_permanent", "missing", "ttd_5", "ttd_9"}]  # fmt: skip
    zeros = ", ".join("0" for _ in others)
    cells = CONNECTIONS * COUNTRIES * NETWORKS * FLOWS
    per_minute = max(rows // 1440, 1)
    columns = ", ".join(f'"{c}"' for c in others)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO rollups_rollup (grain, bucket, connection_id, country, network, flow, currency, cost,
                messages, status_delivered, status_undelivered, class_permanent, missing, ttd_5, ttd_9, {columns})
            SELECT 'm', date_trunc('minute', now()) - (i / %s) * interval '1 minute',
                1 + (c %% {CONNECTIONS}), 'C' || chr(65 + (c / {CONNECTIONS}) %% {COUNTRIES} %% 26),
                'n' || ((c / {CONNECTIONS * COUNTRIES}) %% {NETWORKS}), 'flow-' || ((c / {CONNECTIONS * COUNTRIES * NETWORKS}) %% {FLOWS}),
                '', 0, m, m - m / 10, m / 10, m / 10, (i %% 7 = 0)::int, (m - m / 10) / 2, m - m / 10 - (m - m / 10) / 2, {zeros}
            FROM (SELECT i, ((i * 7919) %% {cells})::int AS c, (1 + i %% 20)::int AS m FROM generate_series(0::bigint, %s - 1) AS i) AS g
            ON CONFLICT DO NOTHING
            """,  # noqa: E501 - the bench's own constants
            [per_minute, rows],
        )
        summed = ", ".join(f'SUM("{c}")' for c in COUNT_COLUMNS)
        names = ", ".join(f'"{c}"' for c in COUNT_COLUMNS)
        for shift in ("0", "7 days"):
            cursor.execute(
                f"""
                INSERT INTO rollups_rollup
                    (grain, bucket, connection_id, country, network, flow, currency, cost, {names})
                SELECT 'h', date_trunc('hour', bucket) - interval '{shift}', connection_id, country, network, flow,
                    currency, 0, {summed}
                FROM rollups_rollup WHERE grain = 'm' GROUP BY 2, 3, 4, 5, 6, 7
                ON CONFLICT DO NOTHING
                """
            )
        cursor.execute(
            """
            INSERT INTO rollups_rollupreason
                (grain, bucket, connection_id, country, network, flow, reason, error_class, count)
            SELECT grain, bucket, connection_id, country, network, flow,
                CASE WHEN connection_id % 2 = 0 THEN 'absent_subscriber' ELSE 'blocked_content' END, 'permanent',
                status_undelivered
            FROM rollups_rollup WHERE status_undelivered > 0
            ON CONFLICT DO NOTHING
            """
        )
        # The coarse levels, as the rebuild makes them: the fine rows added up.
        from receipts.rollups.models import LEVEL_DIMENSIONS
        from receipts.rollups.rebuild import coarse_reason_sql, coarse_sql

        for level in LEVEL_DIMENSIONS:
            cursor.execute(coarse_sql(level))
            cursor.execute(coarse_reason_sql(level))
        cursor.execute(
            "ANALYZE rollups_rollup; ANALYZE rollups_rollupreason; "
            "ANALYZE rollups_coarserollup; ANALYZE rollups_coarserollupreason"
        )
        cursor.execute("SELECT COALESCE(SUM(messages), 0), COUNT(*) FROM rollups_rollup WHERE grain = 'm'")
        messages, minute_rows = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM rollups_rollup WHERE grain = 'h'")
        print(
            f"rollups: {minute_rows:,} minute rows counting {messages:,} messages, {cursor.fetchone()[0]:,} hour rows"
        )
    return int(messages)


def make_rules(count: int, rng: random.Random) -> None:
    from decimal import Decimal

    from alerts.models import AlertRule, Metric
    from receipts.models import Connection

    connections = [
        Connection.objects.create(slug=f"bench-{n}", name=f"Bench {n}", provider="generic") for n in range(CONNECTIONS)
    ]
    metrics = [Metric.DELIVERY_RATE, Metric.CLASS_RATE, Metric.REASON_RATE, Metric.MISSING_RATE,
               Metric.P95_DELIVERY, Metric.VOLUME_WEEK]  # fmt: skip
    rules = []
    for n in range(count):
        metric = Metric.OUTBOX_LAG if n % 25 == 0 else rng.choice(metrics)
        system = metric == Metric.OUTBOX_LAG
        pattern = rng.choice(["", "c", "k", "f", "ck", "cf"]) if not system else ""
        rules.append(AlertRule(
            name=f"rule {n}", metric=metric, threshold=Decimal(50), window_minutes=rng.choice(WINDOWS),
            error_class="permanent" if metric == Metric.CLASS_RATE else "",
            reason=rng.choice(["absent_subscriber", "blocked_content"]) if metric == Metric.REASON_RATE else "",
            connection=rng.choice(connections) if "c" in pattern else None,
            country=f"C{chr(65 + rng.randrange(COUNTRIES) % 26)}" if "k" in pattern else "",
            flow=f"flow-{rng.randrange(FLOWS)}" if "f" in pattern else "", min_volume=1, hold_minutes=5,
        ))  # fmt: skip
    AlertRule.objects.bulk_create(rules)


def run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from alerts import evaluation
    from alerts.models import Alert

    call_command("migrate", verbosity=0)
    rng = random.Random(args.seed)
    started = time.monotonic()
    messages = fill_rollups(args.rows)
    make_rules(args.rules, rng)
    print(f"data ready in {time.monotonic() - started:.0f} s; {args.rules} rules")
    times = []
    now = timezone.now()
    for round_ in range(args.rounds + 1):
        begin = time.perf_counter()
        evaluated = evaluation.evaluate_all(now=now + timedelta(minutes=round_))
        elapsed = time.perf_counter() - begin
        if round_:
            times.append(elapsed)
        print(f"round {round_}{' (warm-up)' if not round_ else ''}: {evaluated} rules in {elapsed * 1000:.0f} ms")
    # Where a round's time goes: the figures' queries, window by window, and the rest.
    from alerts import metrics
    from alerts.models import AlertRule

    watches = [evaluation.watch_of(rule) for rule in AlertRule.objects.filter(enabled=True)]
    begin = time.perf_counter()
    metrics.read_all(watches, now)
    print(f"reading every figure: {(time.perf_counter() - begin) * 1000:.0f} ms")
    for minutes in WINDOWS:
        window = metrics.window_for(minutes, now)
        group = [w for w in watches if w.window_minutes == minutes]
        columns = {c for w in group for c in metrics.METRIC_COLUMNS.get(w.metric, metrics.COLUMNS)}
        begin = time.perf_counter()
        metrics.window_sums(window, (w.scope for w in group), columns)
        print(f"  {minutes:>4}-minute window ({window.grain}): {(time.perf_counter() - begin) * 1000:.0f} ms")
    median = statistics.median(times)
    print(
        f"median round: {median * 1000:.0f} ms over {args.rules} rules, {messages:,} messages in the minute rollups; "
        f"{Alert.objects.count()} alerts open; goal < 1000 ms: {'met' if median < 1 else 'NOT met'}"
    )
    return 0 if median < 1 else 2


if __name__ == "__main__":
    sys.exit(main())
