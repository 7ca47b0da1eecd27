#!/usr/bin/env python
"""Where one webhook request's time goes: per-step timings and database round trips.

Companion to bench/ingest_throughput.py. Same setup (fresh loopback PostgreSQL database, N
registered messages, a Standard Webhooks connection, Redis for the outbox publish), but the
requests are replayed one after another in this process, straight into Django's WSGI handler
(the callable gunicorn calls), with timers wrapped around each step of the project's code and
every SQL statement and libpq round trip counted. Nothing in the project is changed: the
wrappers are installed at run time. Then the reference view is measured the same way.

    .venv/bin/python bench/profile_ingest.py [--receipts 2000] [--rate-limit 1000000]

The timings are uncontended (one request at a time, PostgreSQL on the other core), so they
show each step's own cost; under load every round trip also waits for a CPU (see README).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
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
    SLUG,
    BrokerQueue,
    Hook,
    build_hooks,
    create_database,
    database_url,
    drop_database,
    manage,
    new_webhook_secret,
    reset_data,
    server_env,
)

# step name → seconds, summed over the run; and statement kind → count
timings: defaultdict[str, float] = defaultdict(float)
statements: Counter[str] = Counter()


@contextmanager
def timed(step: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] += time.perf_counter() - started


def wrap(owner: Any, name: str, step: str) -> None:
    """Replace owner.name by a timed wrapper (module functions and methods alike)."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with timed(step):
            return original(*args, **kwargs)

    setattr(owner, name, wrapper)


TABLES = ("receipts_connection", "receipts_receipt", "receipts_message", "receipts_outboxevent")


def statement_kind(sql: str) -> str:
    verb = sql.split(maxsplit=1)[0].upper() if sql.strip() else "?"
    table = min((t for t in TABLES if t in sql), key=sql.index, default="")
    return f"{verb} {table}".strip()


def instrument() -> None:
    """Timers around the project's steps, the SQL statements, the libpq round trips."""
    import psycopg
    from django.db import connection, transaction
    from django.db.backends.postgresql.base import DatabaseWrapper
    from django.db.models.query import QuerySet

    import receipts.ingestion
    import receipts.outbox
    import receipts.store
    import receipts.views
    from receipts.providers.standard_webhooks import StandardWebhooksAdapter

    wrap(receipts.views, "receive", "view: receive() (all below)")
    wrap(receipts.views, "over_rate_limit", "the connection's rate limit (shared cache)")
    wrap(StandardWebhooksAdapter, "verify", "adapter.verify (HMAC)")
    wrap(StandardWebhooksAdapter, "parse", "adapter.parse (JSON)")
    wrap(receipts.views, "ingest", "ingest() incl. commit + publish")
    wrap(receipts.ingestion, "_ingest_one", "_ingest_one (store, advance, record)")
    wrap(receipts.ingestion, "status_change_for", "status_change_for (error catalog, in memory)")
    wrap(receipts.store.backend, "store_and_advance", "store_and_advance (one CTE statement)")
    wrap(receipts.outbox, "_hand_off", "hand-off to the publisher thread")
    wrap(DatabaseWrapper, "_commit", "COMMIT round trip")
    wrap(transaction.Atomic, "__exit__", "leaving atomic(): COMMIT + on_commit publish")
    wrap(QuerySet, "first", "ORM .first() (view's connection lookup)")
    wrap(QuerySet, "update", "ORM .update() (rare paths, publisher)")
    wrap(receipts.views, "JsonResponse", "JsonResponse")
    wrap(receipts.views.WebhookView, "initial", "DRF APIView.initial (negotiation, auth, permissions)")
    wrap(receipts.views.WebhookView, "finalize_response", "DRF finalize_response")

    def on_sql(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        kind = statement_kind(sql)
        statements[kind] += 1
        with timed(f"SQL {kind}"):
            return execute(sql, params, many, context)

    connection.execute_wrappers.append(on_sql)

    # The commands psycopg sends outside cursor.execute: the BEGIN it issues before the first
    # statement of a transaction, the COMMIT. Each is one more round trip.
    original_exec = psycopg.Connection._exec_command

    def exec_command(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        text = command if isinstance(command, str) else bytes(command).decode(errors="replace")
        statements[f"{text.split()[0].upper()} (psycopg, own round trip)"] += 1
        return original_exec(self, command, *args, **kwargs)

    psycopg.Connection._exec_command = exec_command


def environ_for(hook: Hook) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": hook.path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(hook.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(hook.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in hook.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return environ


def replay(handler: Any, hooks: list[Hook]) -> tuple[float, Counter[int]]:
    codes: Counter[int] = Counter()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        codes[int(status.split()[0])] += 1

    started = time.perf_counter()
    for hook in hooks:
        with timed("whole request (WSGI handler)"):
            response = handler(environ_for(hook), start_response)
            b"".join(response)
            response.close()
    return time.perf_counter() - started, codes


def report(label: str, n: int, elapsed: float, codes: Counter[int], db_url: str) -> None:
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM receipts_message WHERE status = 'delivered'").fetchone()
    print(f"\n== {label}: {n} requests in {elapsed:.2f} s sequential = {n / elapsed:.0f}/s; "
          f"statuses {dict(codes)}; delivered {row[0] if row else 0}/{n}")  # fmt: skip
    print("   per request, mean:")
    for step, seconds in sorted(timings.items(), key=lambda item: -item[1]):
        print(f"   {1000 * seconds / n:8.3f} ms  {step}")
    print("   statements and round trips per request:")
    for kind, count in sorted(statements.items()):
        print(f"   {count / n:8.2f}     {kind}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=2000)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--database", default="dlrconsole_bench_profile")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--rate-limit", type=int, help="give the connection this rate limit (requests/s; never reached if high)"
    )
    parser.add_argument(
        "--cprofile", type=int, default=0, metavar="N", help="also print each target's N costliest functions (cProfile)"
    )
    args = parser.parse_args()
    n = args.receipts
    db_url = database_url(args.pg_url, args.database)
    queue = BrokerQueue(args.redis_url)
    secret = new_webhook_secret()
    create_database(args.pg_url, args.database)
    try:
        env = server_env(args, db_url, queue)
        env["DJANGO_SETTINGS_MODULE"] = "dlrconsole.settings"
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "create_connection", SLUG, "--provider", "standard-webhooks", f"--secret={secret}")
        os.environ.update(env)

        import psycopg
        from django.db import connection
        from django.test.utils import override_settings

        with psycopg.connect(db_url) as conn:
            if args.rate_limit:
                conn.execute("UPDATE receipts_connection SET rate_limit = %s WHERE slug = %s", [args.rate_limit, SLUG])
            row = conn.execute("SELECT id FROM receipts_connection WHERE slug = %s", [SLUG]).fetchone()
        assert row is not None
        connection_id = int(row[0])
        from dlrconsole.wsgi import application as handler  # what gunicorn loads, set up as it does

        instrument()
        for label, urlconf in (("project", "dlrconsole.urls"), ("reference", "bench.reference_app.urls")):
            connection.close()
            reset_data(db_url, connection_id, n, 1)
            with override_settings(ROOT_URLCONF=urlconf):
                warm = build_hooks(secret, 1, 1, "warm")  # message 0 of round 1: then reset again
                replay(handler, warm)
                connection.close()
                reset_data(db_url, connection_id, n, 1)
                timings.clear()
                statements.clear()
                hooks = build_hooks(secret, n, 1, label)
                profiler = cProfile.Profile() if args.cprofile else None
                with profiler or contextlib.nullcontext():
                    elapsed, codes = replay(handler, hooks)
            report(label, n, elapsed, codes, db_url)
            if profiler is not None:
                # Own time per function: where the Python of a request goes, the database's
                # waits showing as psycopg's `wait`.
                pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "tottime")).print_stats(args.cprofile)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(args.pg_url, args.database)
        queue.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
