#!/usr/bin/env python
"""What a Prometheus scrape of /metrics costs on a large database: each reading's queries with
their plans (EXPLAIN ANALYZE, BUFFERS) and the whole exposition's time.

A fresh PostgreSQL database (dropped first and afterwards unless --keep) is filled in SQL with
`--messages` messages over 30 days, 2.5 receipts per message (the last 5 minutes at the same
rate as the rest), one outbox event per receipt (all processed but the last minute's), decisions
and attempts for 10 % of messages, feed events, deliveries and POSTs for 10 %, a thousand alerts.

    .venv/bin/python bench/metrics_scrape.py --pg-url postgres://postgres@127.0.0.1:5432/postgres \
        [--messages 10000000] [--runs 20] [--keep]

This is a benchmark, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_throughput import create_database, database_url, drop_database, is_loopback


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-url", required=True, help="maintenance PostgreSQL URL (loopback only)")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20, help="timed expositions (default 20)")
    parser.add_argument("--database", default="dlrconsole_metrics_bench", help="the bench database; DROPPED")
    parser.add_argument("--keep", action="store_true", help="keep the database (to run again with --reuse)")
    parser.add_argument("--reuse", action="store_true", help="use the kept database as it is")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if not is_loopback(urlsplit(args.pg_url).hostname or ""):
        sys.exit("refusing a non-loopback PostgreSQL URL")
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings_demo"
    if not args.reuse:
        create_database(args.pg_url, args.database)
    os.environ["DATABASE_URL"] = database_url(args.pg_url, args.database)
    import django

    django.setup()
    try:
        if not args.reuse:
            fill(args.messages)
        report(args.runs)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(args.pg_url, args.database)
    return 0


def fill(n: int) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from alerts.models import Alert
    from receipts.models import Connection, Message, OutboxEvent, Receipt
    from retries.feed.models import FeedAttempt, FeedDelivery, FeedEvent, ProductEndpoint
    from retries.models import Attempt, Decision

    started = time.monotonic()
    call_command("migrate", verbosity=0)
    connections_ = [
        Connection.objects.create(slug=f"bench-{i}", provider="standard-webhooks", secrets=["whsec_" + "A" * 43])
        for i in range(10)
    ]
    endpoint = ProductEndpoint.objects.create(
        name="product", url="https://product.example/hook", secret="whsec_" + "B" * 43
    )
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="attempts-run", task="retries.tasks.run_due_attempts", interval=every)
    first = connections_[0].pk
    t = {model.__name__: model._meta.db_table for model in
         (Message, Receipt, OutboxEvent, Decision, Attempt, FeedEvent, FeedDelivery, FeedAttempt, Alert)}  # fmt: skip
    r = int(n * 2.5)
    span = "interval '30 days'"
    statements = [
        f"""INSERT INTO {t["Message"]} (id, connection_id, provider_message_id, recipient, country, flow,
            client_reference, status, error_code, reason, error_class, submitted_at, body, fallback_email, created_at)
            SELECT i, {first} + i % 10, 'm' || i, '+336' || lpad(i::text, 8, '0'), 'FR', 'otp', '',
                   CASE WHEN i % 10 = 0 THEN 'undelivered' ELSE 'delivered' END, '', '', '',
                   now() - {span} * ({n} - i) / {n}, '', '', now() - {span} * ({n} - i) / {n}
            FROM generate_series(1, {n}) i""",
        f"""INSERT INTO {t["Receipt"]} (id, connection_id, message_id, provider_message_id, dedupe_key, provider_status,
            status, error_code, error_description, received_at, outcome, raw_body, headers)
            SELECT j, {first} + (j * 2 / 5) % 10, greatest(j * 2 / 5, 1), 'm' || greatest(j * 2 / 5, 1), 'd' || j,
                   'DELIVRD', (ARRAY['accepted','sent','delivered','undelivered'])[1 + j % 4], '', '',
                   now() - {span} * ({r} - j) / {r}, 'applied', '', '{{}}'
            FROM generate_series(1, {r}) j""",
        f"""INSERT INTO {t["OutboxEvent"]} (message_id, receipt_id, kind, status, created_at, dispatched_at,
            dispatch_count, processed_at)
            SELECT message_id, id, 'status_changed', status, received_at, received_at, 1,
                   CASE WHEN received_at < now() - interval '1 minute' THEN received_at END
            FROM {t["Receipt"]}""",
        f"""INSERT INTO {t["Decision"]} (id, message_id, action, state, skip_reason, why, created_at)
            SELECT i, i * 10, 'retry_same', 'scheduled', '', 'bench', now() - {span} * ({n} - i * 10) / {n}
            FROM generate_series(1, {n // 10}) i""",
        f"""INSERT INTO {t["Attempt"]} (decision_id, chain_root_id, number, idempotency_key, action, due_at, tries,
            outcome, detail, response_summary, finished_at)
            SELECT i, i * 10, 1, 'k' || i, 'retry_same', created_at + interval '1 minute', 1,
                   CASE WHEN created_at > now() - interval '2 minutes' THEN 'scheduled' ELSE 'succeeded' END, '', '',
                   CASE WHEN created_at > now() - interval '2 minutes' THEN NULL
                        ELSE created_at + interval '1 minute' END
            FROM {t["Decision"]} d JOIN generate_series(1, {n // 10}) i ON d.id = i""",
        f"""INSERT INTO {t["FeedEvent"]} (id, type, message_id, payload, created_at)
            SELECT i, 'message.delivered', i * 10, '{{}}', now() - {span} * ({n} - i * 10) / {n}
            FROM generate_series(1, {n // 10}) i""",
        f"""INSERT INTO {t["FeedDelivery"]} (id, event_id, endpoint_id, message_id, status, attempts, last_error,
            delivered_at, next_attempt_at)
            SELECT id, id, {endpoint.pk}, message_id,
                   CASE WHEN created_at > now() - interval '1 minute' THEN 'pending' ELSE 'delivered' END, 1, '',
                   CASE WHEN created_at > now() - interval '1 minute' THEN NULL ELSE created_at END, created_at
            FROM {t["FeedEvent"]}""",
        f"""INSERT INTO {t["FeedAttempt"]} (delivery_id, number, attempted_at, status_code, error, duration_ms)
            SELECT id, 1, delivered_at, 204, '', 12 FROM {t["FeedDelivery"]} WHERE delivered_at IS NOT NULL""",
        f"""INSERT INTO {t["Alert"]} (source, title, created_at, acknowledged_at)
            SELECT 'rule', 'bench', now() - interval '1 hour' * i,
                   CASE WHEN i > 20 THEN now() END FROM generate_series(1, 1000) i""",
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        for table in t.values():
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"filled {n:,} messages, {r:,} receipts in {time.monotonic() - started:.0f} s\n")


def report(runs: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from dlrconsole.ops.metrics import READINGS, exposition

    with connection.cursor() as cursor:
        for name, read in READINGS.items():
            with CaptureQueriesContext(connection) as captured:
                list(read(timezone.now()))
            for query in captured.captured_queries:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) {query['sql']}")
                plan = [row[0] for row in cursor.fetchall()]
                print(f"--- {name}: {query['sql'][:300]}")
                print("\n".join(plan), "\n")
    exposition()  # warm
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        exposition()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[max(int(len(times) * 0.95) - 1, 0)]
    median = statistics.median(times)
    print(f"exposition over {runs} runs: median {median:.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
