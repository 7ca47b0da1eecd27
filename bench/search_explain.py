#!/usr/bin/env python
"""The console's message search on a large table: EXPLAIN ANALYZE and timings of its keyset pages.

On loopback only: a fresh PostgreSQL database (dropped if it exists), migrated, with N messages
(default 1,000,000) generated in SQL: 10 connections, 250,000 recipients, seven days of traffic,
~85 % delivered, a rare country (IS, 0.01 %). Then, for each search the console makes, the page
query's plan (EXPLAIN (ANALYZE, BUFFERS)) and the median wall time of `message_page` over 5 runs.

    .venv/bin/python bench/search_explain.py [--rows 1000000] [--keep]

This is a benchmark, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_throughput import create_database, database_url, drop_database, is_loopback

GENERATE = """
INSERT INTO receipts_message (
    connection_id, provider_message_id, recipient, country, flow, client_reference, status, error_code,
    reason, error_class, catalog_class, class_source, submitted_at, first_receipt_at, final_at,
    status_changed_at, body, fallback_email, created_at)
SELECT
    (SELECT array_agg(id ORDER BY id) FROM receipts_connection)[1 + g %% 10],
    'SM' || md5(g::text),
    '+336' || lpad((g %% 250000)::text, 8, '0'),
    CASE WHEN g %% 10000 = 0 THEN 'IS'
         ELSE (ARRAY['FR','FR','FR','GB','GB','DE','US','IN','BR','NG'])[1 + (g * 7) %% 10] END,
    (ARRAY['login-otp','signup','marketing'])[1 + g %% 3],
    CASE WHEN g %% 2 = 0 THEN 'order-' || g ELSE '' END,
    s.status, CASE WHEN s.reason = '' THEN '' ELSE '27' END, s.reason, s.error_class, s.error_class,
    CASE WHEN s.reason = '' THEN '' ELSE 'catalog' END,
    t.at, t.at + interval '1 second',
    CASE WHEN s.status = 'sent' THEN NULL ELSE t.at + (1 + g %% 30) * interval '1 second' END,
    t.at + interval '1 second', '', '', t.at
FROM generate_series(1, %(rows)s) AS g
CROSS JOIN LATERAL (SELECT now() - (%(rows)s - g) * (interval '7 days' / %(rows)s) AS at) AS t
CROSS JOIN LATERAL (
    SELECT * FROM (VALUES
        ('delivered', '', ''), ('undelivered', 'absent_subscriber', 'temporary'),
        ('rejected', 'blocked_content', 'permanent'), ('expired', 'expired', 'temporary'), ('sent', '', '')
    ) AS v(status, reason, error_class)
    OFFSET CASE WHEN (g * 31) %% 100 < 85 THEN 0 WHEN (g * 31) %% 100 < 92 THEN 1
                WHEN (g * 31) %% 100 < 95 THEN 2 WHEN (g * 31) %% 100 < 97 THEN 3 ELSE 4 END
    LIMIT 1
) AS s
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="messages to generate (default 1,000,000)")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres", help="maintenance DB URL")
    parser.add_argument("--database", default="dlrconsole_search_bench", help="the bench database; DROPPED first")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    return parser.parse_args()


def searches(sample: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    return [
        ("newest, no filter", {}),
        ("q = number with spaces", {"q": sample["spaced_number"]}),
        ("q = national number + hint", {"q": sample["national_number"], "region": "FR"}),
        ("q = provider message id", {"q": sample["provider_message_id"]}),
        ("q = client reference", {"q": sample["client_reference"]}),
        ("status = undelivered", {"status": "undelivered"}),
        ("status + country NG", {"status": "undelivered", "country": "NG"}),
        ("reason + connection", {"reason": "absent_subscriber", "connection": "bench-5"}),
        ("last hour", {"submitted_after": sample["an_hour_ago"]}),
        ("rare country IS (worst case)", {"country": "IS"}),
        ("deep page (row ~900,000)", {"before": sample["deep_cursor"]}),
    ]


def main() -> int:
    args = parse_args()
    if not is_loopback(urlsplit(args.pg_url).hostname or ""):
        sys.exit("refusing a non-loopback PostgreSQL URL")
    create_database(args.pg_url, args.database)
    os.environ.pop("REDIS_URL", None)
    os.environ.update(DATABASE_URL=database_url(args.pg_url, args.database),
                      DJANGO_SETTINGS_MODULE="dlrconsole.settings_demo")  # fmt: skip
    try:
        run(args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(args.pg_url, args.database)
    return 0


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.http import QueryDict

    from receipts.filters import MessageFilter
    from receipts.models import Connection, Message
    from receipts.search import NEWEST_FIRST, Cursor, message_page, older_than
    from receipts.selectors import message_list

    call_command("migrate", verbosity=0)
    Connection.objects.bulk_create(Connection(slug=f"bench-{n}", provider="standard-webhooks") for n in range(10))
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(GENERATE, {"rows": args.rows})
        cursor.execute("VACUUM ANALYZE receipts_message")
    print(f"generated {args.rows:,} messages in {time.monotonic() - started:.0f} s")

    newest = Message.objects.order_by("-id").first()
    assert newest is not None
    deep = Message.objects.order_by(*NEWEST_FIRST)[int(args.rows * 0.9)]
    number = newest.recipient  # +336XXXXXXXX
    sample = {
        "spaced_number": f"{number[:3]} {number[3]} {number[4:6]} {number[6:8]} {number[8:10]} {number[10:]}",
        "national_number": "0" + number[3:],
        "provider_message_id": deep.provider_message_id,
        "client_reference": Message.objects.exclude(client_reference="").order_by("id").first().client_reference,  # type: ignore[union-attr]
        "an_hour_ago": (newest.submitted_at.replace(microsecond=0) - timedelta(hours=1)).isoformat(),
        "deep_cursor": Cursor.of(deep).encode(),
    }  # fmt: skip
    for title, query in searches(sample):
        filterset = MessageFilter(QueryDict(urlencode(query)), queryset=message_list(), see_numbers=True)
        assert filterset.is_valid(), filterset.errors
        before = Cursor.decode(query["before"]) if "before" in query else None
        page_query = (older_than(filterset.qs, before) if before else filterset.qs).order_by(*NEWEST_FIRST)[:51]
        plan = page_query.explain(analyze=True, buffers=True)
        timings = []
        for _ in range(5):
            t0 = time.perf_counter()
            page = message_page(filterset.qs, before=before)
            timings.append((time.perf_counter() - t0) * 1000)
        print(f"\n=== {title}: {query}\n    {len(page.rows)} rows, median {statistics.median(timings):.1f} ms "
              f"(max {max(timings):.1f} ms) over 5 runs of message_page")  # fmt: skip
        print("    " + plan.replace("\n", "\n    "))


if __name__ == "__main__":
    sys.exit(main())
