#!/usr/bin/env python
"""Where a decision's CPU goes: the worker's three passes replayed in process, timed per event.

The in-process companion of bench/decision_latency.py, on its setup: a fresh loopback database
(migrated, the default rules, the retry rule's delay set to 0), the Standard Webhooks connection
with a generic HTTP sender to the local gateway, the product endpoint on the local product
server (bench/peers.py, a process of its own), N queued messages and N receipts of the same mix
(80 % delivered, 12 % temporary failures → retry, 8 % permanent → notify), ingested untimed
through Django's WSGI handler. Then, one after another, as the worker's tasks run them:

1. `process_outbox_events` on the events in the publisher's batches (decisions recorded);
2. `run_due_attempts` until no attempt is due (the resends, sent to the gateway);
3. `deliver_feed` until nothing is due (the product endpoint's POSTs).

Each pass's time is divided by its items; with `--cprofile N`, cProfile's top N functions of
the decision pass. One process, uncontended: the figures are each pass's own cost.

    .venv/bin/python bench/profile_decisions.py [--receipts 3000] [--batch 500] [--cprofile 40]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.decision_latency import Peers, build_hooks, configure, expected_actions, insert_messages  # noqa: E402
from bench.ingest_throughput import (  # noqa: E402
    SLUG,
    BrokerQueue,
    create_database,
    database_url,
    drop_database,
    manage,
    new_webhook_secret,
    server_env,
)
from bench.profile_ingest import environ_for  # noqa: E402

PASSES = ("decisions", "resends", "feed")


def ingest(handler: object, hooks: list) -> Counter[int]:
    codes: Counter[int] = Counter()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
        codes[int(status.split()[0])] += 1

    for hook in hooks:
        response = handler(environ_for(hook), start_response)  # type: ignore[operator]
        b"".join(response)
        response.close()
    return codes


def wal_position() -> int:
    """Where PostgreSQL's write-ahead log is, in bytes: what a pass wrote is the difference, a
    figure that, unlike its time, hardly moves with the machine's load (index entries, rows)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def timed_pass(label: str, run: object, items: int, profiler: cProfile.Profile | None = None) -> float:
    wal = wal_position()
    started_cpu, started = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    run()  # type: ignore[operator]
    if profiler:
        profiler.disable()
    wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    per = 1000 / items if items else 0.0
    wal_per = (wal_position() - wal) / items if items else 0.0
    print(
        f"   {label:<34} {items:6d} items  {wall:7.2f} s wall  {wall * per:6.2f} ms/item  {cpu * per:6.2f} ms CPU"
        f"  {wal_per / 1024:6.2f} kB WAL/item"
    )
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=3000, help="receipts (and messages) (default 3000)")
    parser.add_argument("--batch", type=int, default=500, help="events per process_outbox_events task (default 500)")
    parser.add_argument("--cprofile", type=int, metavar="N", help="print cProfile's top N functions of one pass")
    parser.add_argument("--profile-pass", choices=PASSES, default=PASSES[0], help="the pass --cprofile profiles")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="dlrconsole_bench_decision_profile")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    if not 0 < args.receipts <= 100_000 or not 0 < args.batch <= 500:
        parser.error("--receipts must be in 1..100000, --batch in 1..500")
    n = args.receipts
    db_url = database_url(args.pg_url, args.database)
    queue = BrokerQueue(args.redis_url)
    secret = new_webhook_secret()
    feed_secret = new_webhook_secret()
    create_database(args.pg_url, args.database)
    try:
        env = {**server_env(args, db_url, queue), "DJANGO_SETTINGS_MODULE": "dlrconsole.settings"}
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "create_connection", SLUG, "--provider", "standard-webhooks", f"--secret={secret}")
        with tempfile.TemporaryDirectory(prefix="dlr-profile-decisions-") as workdir:
            peers = Peers(env={**env, "BENCH_FEED_SECRET": feed_secret}, workdir=Path(workdir), max_seconds=1800)
            with peers:
                configure(env, peers, feed_secret)
                os.environ.update(env)
                import django

                django.setup()
                from django.core.handlers.wsgi import WSGIHandler

                from receipts.models import Connection, OutboxEvent
                from receipts.outbox import outbox_process_batch, publisher
                from retries.attempts import attempts_run_due
                from retries.feed.models import FeedDelivery
                from retries.feed.services import feed_deliver_due
                from retries.models import Attempt, Decision

                insert_messages(db_url, Connection.objects.get(slug=SLUG).pk, n)
                codes = ingest(WSGIHandler(), build_hooks(secret, n, rate=10_000))
                publisher.wait_idle(60)
                queue.delete()
                ids = list(
                    OutboxEvent.objects.filter(processed_at__isnull=True).order_by("pk").values_list("pk", flat=True)
                )
                print(f"ingested: {dict(codes)}; {len(ids)} outbox events; load average {os.getloadavg()[0]:.2f}")
                profiler = cProfile.Profile() if args.cprofile else None

                def chosen(name: str) -> cProfile.Profile | None:
                    return profiler if name == args.profile_pass else None

                print("== passes, one after another")

                def decide_all() -> None:
                    for i in range(0, len(ids), args.batch):
                        outbox_process_batch(ids[i : i + args.batch])

                timed_pass("decisions (process_outbox_events)", decide_all, len(ids), chosen("decisions"))
                due = Attempt.objects.filter(outcome=Attempt.Outcome.SCHEDULED).count()

                def run_attempts() -> None:
                    for _ in range(due + 1):  # bounded: each pass runs at least one or stops
                        if not attempts_run_due(limit=50):
                            break

                timed_pass("resends (run_due_attempts)", run_attempts, due, chosen("resends"))
                pending = FeedDelivery.objects.filter(delivered_at__isnull=True).count()

                def deliver() -> None:
                    for _ in range(pending + 1):
                        if not feed_deliver_due(limit=100):
                            break

                timed_pass("feed POSTs (deliver_feed)", deliver, pending, chosen("feed"))
                actions = Counter(Decision.objects.values_list("action", flat=True))
                expected = expected_actions(n)
                print(f"decisions by action: {dict(actions)}; expected {dict(expected)}")
                left = OutboxEvent.objects.filter(processed_at__isnull=True).count()
                undelivered = FeedDelivery.objects.filter(delivered_at__isnull=True).count()
                scheduled = Attempt.objects.filter(outcome="scheduled").count()
                print(f"left: {left} events, {scheduled} attempts, {undelivered} feed deliveries")
                if profiler:
                    print(f"\n== cProfile of the {args.profile_pass} pass (overhead included), top {args.cprofile}")
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.cprofile)
                from django.db import connections

                connections.close_all()
    finally:
        if not args.keep:
            drop_database(args.pg_url, args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
