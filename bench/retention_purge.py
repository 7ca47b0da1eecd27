#!/usr/bin/env python
"""What retention's batched purge of receipts costs at 10 million receipts (docs/SCALING.md,
"Partitioning or purge"), against dropping a partition holding the same rows.

On loopback only: a database of its own (dropped first unless --reuse), migrated, filled with
COPY by bench/monitoring_scale.py's generator (--messages messages over 35 days, ~2.5 receipts
each). Then, in this order:

1. baseline: a separate process inserts receipts one per transaction (durable commits, as
   the webhook does) for --seconds: receipts/s with nothing else running;
2. the purge: dlrconsole/ops/retention.py deletes the --purge oldest receipts in batches of
   --batch, exactly as the daily task does, while the same insert loop runs beside it: rows/s
   purged, the WAL it wrote, the batches' p50/max, the table's size and dead rows before and
   after (and after VACUUM), and the inserts' rate as a ratio of the baseline's;
3. for contrast, the same rows as one partition of a range-partitioned copy of the table:
   DETACH PARTITION + DROP TABLE, its time and WAL.

    .venv/bin/python bench/retention_purge.py --keep              # generate 4 M messages (~10 M receipts), measure
    .venv/bin/python bench/retention_purge.py --reuse             # measure again on the kept database (regenerates
                                                                  # nothing: purges the next --purge oldest)
    .venv/bin/python bench/retention_purge.py --messages 200000 --purge 50000 --purge-messages 20000  # small, dropped

4. last, the --purge-messages oldest messages are purged alone by the same task (each batch
   with what hangs on them: receipts, decisions, attempts, rollup snapshots), the first half
   with each batch deleted by the ORM's collector (the baseline), the second half set-based as
   the task does (dlrconsole/ops/cascade.py): messages/s, each batch's time, the WAL, the ratio.

This is a benchmark, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_throughput import create_database, database_url, drop_database, is_loopback

DEFAULT_DATABASE = "dlr_retention_bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--messages", type=int, default=4_000_000)
    parser.add_argument("--purge", type=int, default=1_000_000, help="receipts to purge (the oldest)")
    parser.add_argument(
        "--purge-messages", type=int, default=500_000, help="then messages to purge (oldest first), with their rows"
    )
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the baseline insert run")
    parser.add_argument("--writers", type=int, default=8, help="concurrent insert loops (the webhook's workers)")
    parser.add_argument("--max-purge-seconds", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="use the kept database as it is")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if not is_loopback(urlsplit(args.pg_url).hostname or ""):
        sys.exit("refusing a non-loopback PostgreSQL URL")
    if not 1000 <= args.purge <= 50_000_000 or not 100 <= args.batch <= 50_000 or not 1 <= args.seconds <= 300:
        sys.exit("--purge, --batch or --seconds out of range")
    if not 0 <= args.purge_messages <= 50_000_000:
        sys.exit("--purge-messages out of range")
    if not 1 <= args.writers <= 32:
        sys.exit("--writers must be between 1 and 32")
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings_demo"
    os.environ["DATABASE_URL"] = database_url(args.pg_url, args.database)
    if not args.reuse:
        create_database(args.pg_url, args.database)
    try:
        return run(args)
    finally:
        if not args.keep and not args.reuse:
            from django.db import connections

            connections.close_all()
            drop_database(args.pg_url, args.database)


# --------------------------------------------------------------------------- the insert loop


def insert_loop(db_url: str, seconds: float, start_id: int, result: Any) -> None:
    """Single-receipt transactions, as the webhook's: a receipt for an existing message with
    a fresh dedupe key, committed durably. Bounded by time and by count."""
    done = 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        connection_id, message_id = conn.execute("SELECT connection_id, id FROM receipts_message LIMIT 1").fetchone()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and done < 5_000_000:
            conn.execute(
                "INSERT INTO receipts_receipt (connection_id, message_id, provider_message_id, dedupe_key, "
                "provider_status, status, error_code, error_description, received_at, outcome, raw_body, headers) "
                "VALUES (%s, %s, 'bench', %s, 'DELIVRD', 'delivered', '', '', now(), 'applied', "
                '\'{"id": "bench", "to": "+33600000000"}\', \'{}\') ON CONFLICT DO NOTHING',
                [connection_id, message_id, f"bench-{start_id}-{done}"],
            )
            done += 1
            if done % 50 == 0:
                result.value = done  # read by the parent even if it stops this process
    result.value = done


class Writers:
    """`n` insert loops in processes of their own (the purge runs in this one)."""

    def __init__(self, n: int, seconds: float, tag: int) -> None:
        self.results = [multiprocessing.Value("q", 0) for _ in range(n)]
        self.processes = [
            multiprocessing.Process(
                target=insert_loop, args=(os.environ["DATABASE_URL"], seconds, tag * 1000 + i, result)
            )
            for i, result in enumerate(self.results)
        ]
        for process in self.processes:
            process.start()
        self.started, self.before = time.monotonic(), 0

    def mark(self) -> None:
        """Count from now on (the writers are connected and running)."""
        self.started, self.before = time.monotonic(), sum(result.value for result in self.results)

    def stop(self) -> float:
        """Inserts per second since the mark."""
        done, elapsed = sum(result.value for result in self.results), time.monotonic() - self.started
        for process in self.processes:
            process.terminate()
            process.join()
        return (done - self.before) / elapsed

    def wait(self) -> float:
        for process in self.processes:
            process.join()
        return sum(result.value for result in self.results) / (time.monotonic() - self.started)


# --------------------------------------------------------------------------- measuring


def table_state(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    # Backends report their counts within a second or so; read fresh ones.
    time.sleep(1.5)
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT pg_relation_size('receipts_receipt'), pg_indexes_size('receipts_receipt'), "
        "pg_total_relation_size('receipts_receipt'), n_live_tup, n_dead_tup "
        "FROM pg_stat_user_tables WHERE relname = 'receipts_receipt'"
    ).fetchone()
    state = dict(zip(("heap_bytes", "index_bytes", "total_bytes", "live_rows", "dead_rows"), row, strict=True))
    # The heap's free space (what VACUUM made reusable), estimated from the visibility map.
    state["heap_free_percent"] = conn.execute(
        "SELECT round(approx_free_percent::numeric, 1) FROM pgstattuple_approx('receipts_receipt')"
    ).fetchone()[0]
    return state


def wal_lsn(conn: psycopg.Connection[Any]) -> str:
    return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def wal_since(conn: psycopg.Connection[Any], lsn: str) -> int:
    return int(conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", [lsn]).fetchone()[0])


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def purge(args: argparse.Namespace, before: Any) -> dict[str, Any]:
    """The daily task's receipt purge, batch by batch, timed."""
    from django.utils import timezone

    from dlrconsole.ops import retention

    times: list[float] = []
    run = retention.Run(now=timezone.now(), batch=args.batch, deadline=time.monotonic() + args.max_purge_seconds)
    original = retention._delete_receipts

    def timed(run_: retention.Run, ids: list[int]) -> None:
        started = time.perf_counter()
        original(run_, ids)
        times.append(time.perf_counter() - started)

    retention._delete_receipts = timed  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        retention._purge_receipts(run, before)
        elapsed = time.perf_counter() - started
    finally:
        retention._delete_receipts = original  # type: ignore[assignment]
    deleted = run.deleted.get("receipts_receipt", 0)
    return {
        "deleted": deleted,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(deleted / elapsed),
        "batches": len(times),
        "batch_delete_p50_ms": round(statistics.median(times) * 1000, 1) if times else None,
        "batch_delete_max_ms": round(max(times) * 1000, 1) if times else None,
    }


def purge_messages(args: argparse.Namespace, conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The daily task's message purge (each batch with its receipts, decisions, attempts and
    rollup snapshots) over the --purge-messages oldest messages, alone, timed, with its WAL.
    Batches alternate between the ORM's collector deleting the messages (the baseline: as before
    dlrconsole/ops/cascade.py) and the set-based deletes the task uses, so both meet the same
    data in the same run."""
    from collections import Counter

    from django.apps import apps
    from django.utils import timezone

    from dlrconsole.ops import retention

    row = conn.execute(
        "SELECT submitted_at FROM receipts_message ORDER BY submitted_at OFFSET %s LIMIT 1", [args.purge_messages]
    ).fetchone()
    if row is None:
        return {}
    before = row[0]
    run = retention.Run(now=timezone.now(), batch=args.batch, deadline=time.monotonic() + args.max_purge_seconds)
    original = retention.delete_cascading
    ways: dict[str, dict[str, Any]] = {
        way: {"times": [], "messages": 0, "with_them": Counter()} for way in ("ORM collector", "set-based")
    }
    last = [time.perf_counter()]

    def orm_delete(model: Any, ids: Any) -> Counter[str]:
        deleted = model._default_manager.filter(pk__in=ids).only("pk").delete()[1]
        return Counter({apps.get_model(label)._meta.db_table: n for label, n in deleted.items()})

    def timed(model: Any, ids: Any) -> Any:  # the last step of each batch
        way = "ORM collector" if sum(len(w["times"]) for w in ways.values()) % 2 == 0 else "set-based"
        deleted = (orm_delete if way == "ORM collector" else original)(model, ids)
        now = time.perf_counter()
        ways[way]["times"].append(now - last[0])
        ways[way]["messages"] += len(ids)
        last[0] = now
        return deleted

    retention.delete_cascading = timed
    conn.execute("CHECKPOINT")
    lsn = wal_lsn(conn)
    try:
        last[0] = time.perf_counter()
        retention._purge_messages(run, before)
    finally:
        retention.delete_cascading = original
    report: dict[str, Any] = {"before": str(before), "with_them": dict(run.deleted), "wal_bytes": wal_since(conn, lsn)}
    for way, figures in ways.items():
        times = figures["times"]
        seconds = sum(times)
        report[way] = {
            "messages": figures["messages"],
            "seconds": round(seconds, 2),
            "rows_per_s": round(figures["messages"] / seconds) if seconds else None,
            "batch_p50_ms": round(statistics.median(times) * 1000, 1) if times else None,
            "batch_max_ms": round(max(times) * 1000, 1) if times else None,
        }
    return report


def partition_contrast(conn: psycopg.Connection[Any], before: Any, count: int) -> dict[str, Any]:
    """The same number of rows as one partition: DETACH + DROP, timed, with its WAL."""
    bound = _lit(conn, before)  # DDL takes no parameters
    conn.execute("DROP TABLE IF EXISTS bench_partitioned")
    conn.execute(
        "CREATE TABLE bench_partitioned (LIKE receipts_receipt INCLUDING DEFAULTS) PARTITION BY RANGE (received_at)"
    )
    conn.execute(f"CREATE TABLE bench_old PARTITION OF bench_partitioned FOR VALUES FROM (MINVALUE) TO ({bound})")
    conn.execute(f"CREATE TABLE bench_new PARTITION OF bench_partitioned FOR VALUES FROM ({bound}) TO (MAXVALUE)")
    # The rows the purge is about to delete: all in the old partition.
    conn.execute("INSERT INTO bench_partitioned SELECT * FROM receipts_receipt WHERE received_at < %s", [before])
    conn.execute("CREATE INDEX ON bench_partitioned (received_at)")
    conn.execute("CHECKPOINT")
    lsn = wal_lsn(conn)
    started = time.perf_counter()
    conn.execute("ALTER TABLE bench_partitioned DETACH PARTITION bench_old")
    conn.execute("DROP TABLE bench_old")
    elapsed = time.perf_counter() - started
    wal = wal_since(conn, lsn)
    conn.execute("DROP TABLE bench_partitioned")
    return {"rows": count, "seconds": round(elapsed, 3), "wal_bytes": wal}


def _lit(conn: psycopg.Connection[Any], value: Any) -> str:
    return conn.execute("SELECT quote_literal(%s::timestamptz::text)", [value]).fetchone()[0]


def run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.core.management import call_command

    db_url = os.environ["DATABASE_URL"]
    if not args.reuse:
        call_command("migrate", verbosity=0)
        from bench.monitoring_scale import generate

        started = time.perf_counter()
        counts = generate(argparse.Namespace(messages=args.messages, seed=args.seed))
        print(f"generated {counts} in {time.perf_counter() - started:,.0f} s", flush=True)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE receipts_receipt")
        total = conn.execute("SELECT count(*) FROM receipts_receipt").fetchone()[0]
        before, halfway = (
            conn.execute(
                "SELECT received_at FROM receipts_receipt ORDER BY received_at OFFSET %s LIMIT 1", [n]
            ).fetchone()[0]
            for n in (args.purge, args.purge // 2)
        )
        print(f"{total:,} receipts; purging the {args.purge:,} received before {before}", flush=True)

        conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        baseline_rate = Writers(args.writers, args.seconds, 1).wait()
        print(f"baseline: {baseline_rate:,.0f} single-receipt inserts/s", flush=True)

        contrast = partition_contrast(conn, before, args.purge)
        state_before = table_state(conn)
        # First half alone: its rate and the WAL it writes; second half beside the writers:
        # its rate under load and what it costs them.
        conn.execute("CHECKPOINT")
        lsn = wal_lsn(conn)
        alone = purge(args, halfway)
        alone["wal_bytes"] = wal_since(conn, lsn)
        writers = Writers(args.writers, args.max_purge_seconds, 2)
        time.sleep(2)  # the writers connected and running before the purge starts
        writers.mark()
        figures = purge(args, before)
        during_rate = writers.stop()
        from django.db import connections

        connections.close_all()  # its statistics reported
        state_after = table_state(conn)
        conn.execute("VACUUM receipts_receipt")
        state_vacuumed = table_state(conn)
        messages_total = conn.execute("SELECT count(*) FROM receipts_message").fetchone()[0]
        messages = purge_messages(args, conn) if args.purge_messages else {}

    report = {
        "receipts": total,
        "purge_alone": alone,
        "wal_per_row_bytes": round(alone["wal_bytes"] / max(alone["deleted"], 1)),
        "purge_beside_inserts": figures,
        "inserts_baseline_per_s": round(baseline_rate),
        "inserts_during_purge_per_s": round(during_rate),
        "ingest_ratio": round(during_rate / baseline_rate, 2) if baseline_rate else None,
        "table_before": state_before,
        "table_after": state_after,
        "table_after_vacuum": state_vacuumed,
        "partition_drop": contrast,
        "messages": messages_total,
        "messages_purge": messages,
    }
    print(json.dumps(report, indent=2, default=str))
    print(
        f"\npurge alone: {alone['deleted']:,} receipts in {alone['seconds']} s = {alone['rows_per_s']:,} rows/s "
        f"(batches of {args.batch}: p50 {alone['batch_delete_p50_ms']} ms, max {alone['batch_delete_max_ms']} ms); "
        f"WAL {mb(alone['wal_bytes'])} ({report['wal_per_row_bytes']} B/row)\n"
        f"purge beside {args.writers} writers: {figures['deleted']:,} receipts in {figures['seconds']} s = "
        f"{figures['rows_per_s']:,} rows/s "
        f"(p50 {figures['batch_delete_p50_ms']} ms, max {figures['batch_delete_max_ms']} ms)\n"
        f"inserts beside it: {during_rate:,.0f}/s vs {baseline_rate:,.0f}/s alone = "
        f"ratio {report['ingest_ratio']}\n"
        f"table: {mb(state_before['total_bytes'])} before, {mb(state_after['total_bytes'])} after "
        f"({state_after['dead_rows']:,} dead rows), {mb(state_vacuumed['total_bytes'])} after VACUUM "
        f"({state_vacuumed['heap_free_percent']} % of the heap free for new rows: kept, not returned)\n"
        f"partition drop of the same rows: {contrast['seconds']} s, WAL {mb(contrast['wal_bytes'])}",
        flush=True,
    )
    if messages:
        orm, sets = messages["ORM collector"], messages["set-based"]
        print(
            f"messages purge (of {messages_total:,}), batches of {args.batch} alternating: "
            f"ORM collector {orm['messages']:,} in {orm['seconds']} s = {orm['rows_per_s']:,}/s "
            f"(p50 {orm['batch_p50_ms']} ms, max {orm['batch_max_ms']} ms); set-based {sets['messages']:,} in "
            f"{sets['seconds']} s = {sets['rows_per_s']:,}/s (p50 {sets['batch_p50_ms']} ms, max "
            f"{sets['batch_max_ms']} ms); with them {messages['with_them']}; WAL {mb(messages['wal_bytes'])}\n"
            f"set-based / ORM: {sets['rows_per_s'] / orm['rows_per_s']:.1f}x the messages/s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
