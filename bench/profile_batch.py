#!/usr/bin/env python
"""Where a batch's time goes: per-step timings of Infobip batches replayed in process.

The batch companion of bench/profile_ingest.py, on bench/ingest_throughput.py's `--batch` setup:
a fresh loopback PostgreSQL database, N queued messages, the `bench-infobip` connection, and
Infobip requests of B `DELIVERED_TO_HANDSET` reports of which `--stored-share` were posted
before (untimed: the timed batches carry them again, a provider's retry). The timed requests go
one after another straight into dlrconsole.wsgi's application (the callable gunicorn loads, set
up as gunicorn sets it up), with timers installed at run time around each step of the project's
code and each SQL statement; nothing in the project is changed.

    .venv/bin/python bench/profile_batch.py [--batches 10] [--batch 1000] [--stored-share 0.4] [--explain]

With `--explain`, one more batch is replayed after the timed ones (on fresh data) with each of
the batch's statements first run under `EXPLAIN (ANALYZE, BUFFERS)` with its real parameters,
inside a savepoint rolled back before the statement runs for real; the deferred foreign-key
checks are made immediate there, so their triggers show in the plans instead of at COMMIT.

The timings are uncontended (one request at a time, PostgreSQL on the other core), so they show
each step's own cost; on a shared machine compare the per-statement figures, not the totals.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import secrets
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest_throughput import (  # noqa: E402
    INFOBIP_SLUG,
    BrokerQueue,
    Hook,
    build_batches,
    create_database,
    database_url,
    drop_database,
    manage,
    reset_data,
    server_env,
)
from bench.profile_ingest import environ_for  # noqa: E402

# step name → seconds summed over the timed run, and how often it ran
timings: defaultdict[str, float] = defaultdict(float)
calls: Counter[str] = Counter()
explaining = False


@contextmanager
def timed(step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] += time.perf_counter() - started
        calls[step] += 1


def wrap(owner: Any, name: str, step: str) -> None:
    """Replace owner.name by a timed wrapper (module functions and methods alike)."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with timed(step):
            return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def statement_name(sql: str) -> str:
    text = " ".join(sql.split())
    for needle, name in (
        ("pg_advisory_xact_lock", "SELECT pg_advisory_xact_lock (identity locks of missing messages)"),
        ("FOR UPDATE", "SELECT … FOR UPDATE receipts_message (lock the batch's messages)"),
        ("INSERT INTO receipts_receipt", "INSERT receipts_receipt … unnest (the receipts)"),
        ("UPDATE receipts_message m", "UPDATE receipts_message + rolluppending + outbox (one statement)"),
        ("COPY", "COPY"),
    ):
        if needle in text:
            return f"SQL {name}"
    return "SQL " + text[:60]


def shorten(line: str, width: int = 220) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def explain(cursor: Any, sql: str, params: Any) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) the statement with its real parameters, undone by a savepoint."""
    global explaining
    explaining = False  # the EXPLAIN below goes through the same wrappers
    cursor.execute("SAVEPOINT profile_explain")
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred FK triggers show in the plan
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, SETTINGS) {sql}", params)
    plan = "\n".join(f"      {shorten(row[0])}" for row in cursor.fetchall())
    cursor.execute("ROLLBACK TO SAVEPOINT profile_explain")
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    explaining = True
    print(f"\n   -- {statement_name(sql)[4:]}\n{plan}")


def instrument() -> None:
    """Timers around the project's steps and every SQL statement of a batch."""
    import psycopg
    from django.db import connection, transaction
    from django.db.backends.postgresql.base import DatabaseWrapper
    from psycopg._cursor_base import BaseCursor

    import receipts.ingestion
    import receipts.outbox
    import receipts.store
    import receipts.views
    from receipts.providers.base import ProviderAdapter, ReceiptEvent
    from receipts.providers.infobip import InfobipAdapter

    wrap(receipts.views, "receive", "view: receive() (all below)")
    wrap(InfobipAdapter, "verify", "adapter.verify (token)")
    wrap(ProviderAdapter, "parse", "adapter.parse (JSON, 1,000 ReceiptEvents)")
    wrap(receipts.views, "ingest", "ingest() incl. COMMIT + publish")
    wrap(ReceiptEvent, "dedupe_key", "  per report: ReceiptEvent.dedupe_key (sha256)")
    wrap(receipts.ingestion, "status_change_for", "  per report: status_change_for (classification)")
    wrap(receipts.ingestion, "_ingest_batch", "_ingest_batch (the statements below + planning)")
    wrap(receipts.store, "messages_lock_for_receipts", "  store.messages_lock_for_receipts")
    wrap(receipts.ingestion, "plan_batch", "  plan_batch (outcomes in memory)")
    wrap(receipts.store, "receipts_insert", "  store.receipts_insert (params + statement)")
    wrap(receipts.ingestion, "message_writes", "  message_writes (plan in memory)")
    wrap(receipts.store, "messages_write", "  store.messages_write (params + statement)")
    wrap(receipts.outbox, "_hand_off", "hand-off to the publisher thread")
    wrap(DatabaseWrapper, "_commit", "COMMIT round trip (deferred FK checks run here)")
    wrap(transaction.Atomic, "__exit__", "leaving atomic(): COMMIT + on_commit publish")

    def on_sql(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if is_batch_statement(sql):  # timed below, on psycopg's cursor, whichever cursor runs it
            return execute(sql, params, many, context)
        if explaining and "FOR UPDATE" in sql:
            explain(context["cursor"].cursor, sql, params)
        with timed(statement_name(sql)):
            return execute(sql, params, many, context)

    connection.execute_wrappers.append(on_sql)

    # The batch statements: timed on psycopg's cursor (they may run on one of their own, not
    # Django's), and within them the client's conversion of the parameters.
    original_execute = psycopg.Cursor.execute

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        sql = query if isinstance(query, str) else str(query)
        if not is_batch_statement(sql):
            return original_execute(self, query, params, **kwargs)
        if explaining:
            explain(self, sql, params)
        with timed(statement_name(sql)):
            return original_execute(self, query, params, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    original_convert = BaseCursor._convert_query

    def convert_query(self: Any, query: Any, params: Any = None) -> Any:
        sql = query if isinstance(query, str) else str(query)
        if not is_batch_statement(sql):
            return original_convert(self, query, params)
        with timed(f"  of which psycopg converts the parameters ({statement_name(sql)[4:10]}…)"):
            return original_convert(self, query, params)

    BaseCursor._convert_query = convert_query  # type: ignore[method-assign]


def is_batch_statement(sql: str) -> bool:
    return "unnest" in sql and ("INSERT INTO receipts_receipt" in sql or "UPDATE receipts_message m" in sql)


def replay(handler: Any, hooks: list[Hook], *, step: str | None) -> list[dict[str, Any]]:
    """Post the hooks one after another; each response's JSON body."""
    bodies = []
    status: list[str] = []

    def start_response(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(code)

    for hook in hooks:
        status.clear()

        started = time.perf_counter()
        response = handler(environ_for(hook), start_response)
        body = b"".join(response)
        response.close()
        if step:
            timings[step] += time.perf_counter() - started
            calls[step] += 1
        if not status[0].startswith("2"):
            raise RuntimeError(f"{status[0]}: {body[:500]!r}")
        bodies.append(json.loads(body))
    return bodies


def add_other_messages(db_url: str, connection_id: int, m: int) -> None:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO receipts_message (connection_id, provider_message_id, recipient, country, flow,"
            " client_reference, status, error_code, reason, error_class, submitted_at, created_at, body,"
            " fallback_email) SELECT %s, 'other-' || i, '+3362' || lpad(i::text, 7, '0'), 'FR', '', '', 'delivered',"
            " '', '', '', now() - interval '1 day', now() - interval '1 day', '', '' FROM generate_series(1, %s) AS i",
            [connection_id, m],
        )
        conn.execute("VACUUM ANALYZE receipts_message")
        conn.execute("CHECKPOINT")


def wal_position(db_url: str) -> int:
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


def report(batches: int, batch: int, elapsed: float) -> None:
    print(
        f"\n== {batches} batches of {batch} in {elapsed:.2f} s sequential = {batches * batch / elapsed:,.0f} "
        f"receipts/s in process; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print("   ms per batch (mean), calls per batch:")
    for step, seconds in sorted(timings.items(), key=lambda item: -item[1]):
        print(f"   {1000 * seconds / batches:9.2f} ms  {calls[step] / batches:7.1f}x  {step}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=10, help="timed batches (default 10)")
    parser.add_argument("--batch", type=int, default=1000, help="reports per batch (default 1000)")
    parser.add_argument("--stored-share", type=float, default=0.4, help="share of each batch stored before")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) one more batch")
    parser.add_argument(
        "--other-messages", type=int, default=0, metavar="M",
        help="M more messages in the table, no batch's (the plans at a production table's size)",
    )  # fmt: skip
    parser.add_argument("--cprofile", type=int, metavar="N", help="print cProfile's top N functions of the timed run")
    parser.add_argument(
        "--hot-status", type=int, metavar="FILLFACTOR",
        help="what a HOT status change would take: no index on the status, the messages table at this fillfactor",
    )  # fmt: skip
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="dlrconsole_bench_batch_profile")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    if args.hot_status is not None and not 10 <= args.hot_status <= 100:
        parser.error("--hot-status takes a fillfactor from 10 to 100")
    n = args.batches * args.batch
    db_url = database_url(args.pg_url, args.database)
    queue = BrokerQueue(args.redis_url)
    token = secrets.token_urlsafe(24)
    create_database(args.pg_url, args.database)
    try:
        env = server_env(args, db_url, queue)
        env["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings"
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "create_connection", INFOBIP_SLUG, "--provider", "infobip", f"--secret={token}")
        if args.hot_status is not None:
            # An experiment, not the schema: a message's status change can be a HOT update only
            # if no index holds a column it changes and its page has room (bench/README.md,
            # "The batch, stop 26"). The fillfactor applies to the rows each reset loads.
            import psycopg

            with psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute("DROP INDEX message_status_submitted_idx")
                conn.execute(f"ALTER TABLE receipts_message SET (fillfactor = {int(args.hot_status)})")
        os.environ.update(env)

        import psycopg
        from django.db import connection

        from dlrconsole.wsgi import application as handler  # what gunicorn loads, set up as it does

        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT id FROM receipts_connection WHERE slug = %s", [INFOBIP_SLUG]).fetchone()
        assert row is not None
        connection_id = int(row[0])
        instrument()

        def fresh(round_no: int, count: int) -> list[Hook]:
            """Fresh tables with `count` queued messages, the first reports of each batch stored."""
            connection.close()
            reset_data(db_url, connection_id, count, round_no)
            if args.other_messages:
                add_other_messages(db_url, connection_id, args.other_messages)
            before, timed_hooks = build_batches(token, count, round_no, args.batch, args.stored_share)
            replay(handler, before, step=None)
            return timed_hooks

        replay(handler, fresh(1, args.batch), step=None)  # warm: imports, prepared statements
        hooks = fresh(2, n)
        timings.clear()
        calls.clear()
        profiler = cProfile.Profile() if args.cprofile else None
        wal_before = wal_position(db_url)
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        bodies = replay(handler, hooks, step="whole request (WSGI handler)")
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
        wal = wal_position(db_url) - wal_before
        stored = sum(body.get("applied", 0) for body in bodies)
        duplicates = sum(body.get("duplicates", 0) for body in bodies)
        print(f"\nresponses: {stored} applied, {duplicates} duplicates (of {n} reports)")
        report(args.batches, args.batch, elapsed)
        print(f"   WAL written: {wal / args.batches / 1024:,.0f} kB per batch")
        with connection.cursor() as cursor:  # the web process's session: its prepared statements
            cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            for sql, generic, custom in cursor.fetchall():
                if is_batch_statement(sql):
                    print(f"   prepared {statement_name(sql)[4:]}: {generic} generic plans, {custom} custom")
        if profiler:
            print(f"\n== cProfile of the timed run (its own overhead included), top {args.cprofile} by own time")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.cprofile)
        if args.explain:
            global explaining
            hooks = fresh(3, args.batch)
            print(f"\n== EXPLAIN (ANALYZE, BUFFERS) of one batch of {args.batch}, real parameters")
            explaining = True
            replay(handler, hooks, step=None)
            explaining = False
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.pg_url, args.database)
        queue.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
