#!/usr/bin/env python
"""Receipt-to-executed-decision latency at a paced rate, with a real Celery worker running.

On loopback only: a fresh database (migrated, so the default rules exist), a Standard Webhooks
connection, N queued messages, gunicorn (2 sync workers) and `celery -A dlrconsole worker`
(prefork, concurrency 2) on a queue of its own. N signed receipts (mostly `delivered`, some
`undelivered` with a temporary or a permanent GSM MAP error code) are posted at a constant rate;
once every outbox event is processed, SQL gives per receipt Receipt.received_at →
Decision.created_at (and OutboxEvent.created_at → Decision.created_at, which leaves out the
request itself but still includes the publisher's linger).

    .venv/bin/python bench/decision_latency.py [--receipts 4000] [--rate 200]

Exit status: 0 when every applied receipt got exactly one decision and every request got a
2xx, 1 otherwise. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest_throughput import (
    LOOPBACK,
    ROOT,
    SLUG,
    BrokerQueue,
    Gunicorn,
    Hook,
    create_database,
    database_url,
    drop_database,
    is_loopback,
    manage,
    percentile,
    provider_message_id,
    server_env,
    sign,
    warm_up,
)

# (status, error_code, share): GSM MAP 27 absent subscriber is temporary (→ retry scheduled),
# GSM MAP 1 unknown subscriber is permanent (→ notify).
MIX = [("delivered", "", 0.80), ("undelivered", "27", 0.12), ("undelivered", "1", 0.08)]
ROUND = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=4000, help="receipts (and messages) (default 4000)")
    parser.add_argument("--rate", type=float, default=200, help="receipts per second, paced (default 200)")
    parser.add_argument("--senders", type=int, default=4, help="sender threads, keep-alive (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="celery prefork processes (default 2)")
    parser.add_argument("--drain-seconds", type=float, default=60, help="wait for the outbox to drain (default 60)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="maintenance database URL (loopback only)",
    )
    parser.add_argument("--database", default="dlrconsole_bench_decisions", help="bench database, dropped if it exists")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="broker (loopback only)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database at the end")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.receipts < 1 or args.rate <= 0 or args.senders < 1 or args.workers < 1 or args.concurrency < 1:
        parser.error("--receipts, --rate, --senders, --workers and --concurrency must be positive")
    if args.receipts / args.rate > 240:
        parser.error("--receipts / --rate is at most 240 s: receipts are signed before the run (5-minute tolerance)")
    if not 0 < args.drain_seconds <= 600:
        parser.error("--drain-seconds must be in (0, 600]")
    if not args.database.isidentifier():
        parser.error("--database must be a plain identifier")
    for url in (args.pg_url, args.redis_url):
        if not is_loopback(urlsplit(url).hostname or ""):
            parser.error(f"{url}: the benchmark runs on loopback only")
    return args


def outcome_of(i: int) -> tuple[str, str]:
    """Deterministic mix, spread evenly over the run (per 100 receipts: 80, 12, 8)."""
    slot = (i * 37) % 100  # 37 is prime to 100: every slot once per 100 receipts
    bound = 0.0
    for status, code, share in MIX:
        bound += share * 100
        if slot < bound:
            return status, code
    return MIX[-1][0], MIX[-1][1]


def insert_messages(db_url: str, connection_id: int, n: int) -> None:
    """N queued messages in the fresh database. (ingest_throughput.reset_data TRUNCATEs the outbox,
    which retries_decision now references, so it cannot be reused here.)"""
    now = datetime.now(UTC)
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        with conn.cursor() as cursor:
            copy_sql = (
                "COPY receipts_message (connection_id, provider_message_id, recipient, country, flow,"
                " client_reference, status, error_code, reason, error_class, submitted_at, created_at)"
                " FROM STDIN"
            )
            with cursor.copy(copy_sql) as copy:
                for i in range(n):
                    copy.write_row(
                        (connection_id, provider_message_id(ROUND, i), f"+3361{i:07d}", "FR", "otp", "", "queued",
                         "", "", "", now, now)
                    )  # fmt: skip
        conn.execute("VACUUM ANALYZE receipts_message")


def build_hooks(secret: str, n: int) -> list[Hook]:
    timestamp = int(time.time())
    hooks = []
    for i in range(n):
        status, code = outcome_of(i)
        webhook_id = f"msg_lat_{i:07d}"
        data = {"message_id": provider_message_id(ROUND, i), "status": status}
        if code:
            data["error_code"] = code
        body = json.dumps({"type": "message.status", "data": data}, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "dlrconsole-bench",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, webhook_id, timestamp, body),
        }
        hooks.append(Hook(f"/hooks/{SLUG}/", headers, body))
    return hooks


class CeleryWorker:
    """`celery -A dlrconsole worker` (prefork) on the bench queue, in its own process group."""

    def __init__(self, *, env: dict[str, str], queue: str, concurrency: int, log_path: Path) -> None:
        self.env = {**env, "DJANGO_SETTINGS_MODULE": "dlrconsole.settings"}
        self.queue = queue
        self.concurrency = concurrency
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.ready = threading.Event()
        self.reader: threading.Thread | None = None

    def __enter__(self) -> CeleryWorker:
        command = [
            sys.executable, "-m", "celery", "-A", "dlrconsole", "worker",
            "--pool", "prefork", "--concurrency", str(self.concurrency),
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-Q", self.queue, "--loglevel", "INFO", "--hostname", f"bench-{os.getpid()}@%h",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            deadline = time.monotonic() + 60
            while not self.ready.wait(0.2):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"celery worker did not become ready; see {self.log_path}")
        except BaseException:
            self.stop()
            raise
        return self

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        with self.log_path.open("w") as log:
            for line in self.process.stdout:
                log.write(line)
                if " ready." in line:
                    self.ready.set()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.reader is not None:
            self.reader.join(timeout=5)


def send_paced(hooks: list[Hook], port: int, rate: float, senders: int) -> dict[str, object]:
    """Request i is due at start + i/rate; sender t sends i ≡ t (mod senders) on a keep-alive
    connection. Bounded: each request is sent once, and the run stops 60 s after its schedule."""
    n = len(hooks)
    start = time.monotonic() + 0.2
    deadline = start + n / rate + 60
    lock = threading.Lock()
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    lateness: list[float] = []
    last_done = [start]

    def worker(t: int) -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        own_status, own_errors, own_late = Counter[str](), Counter[str](), []
        try:
            for i in range(t, n, senders):
                due = start + i / rate
                now = time.monotonic()
                if now > deadline:
                    own_errors["deadline"] += n - i
                    break
                if due > now:
                    time.sleep(due - now)
                own_late.append(max(0.0, time.monotonic() - due))
                hook = hooks[i]
                try:
                    conn.request("POST", hook.path, body=hook.body, headers=hook.headers)
                    response = conn.getresponse()
                    response.read()
                    own_status[str(response.status)] += 1
                except (OSError, http.client.HTTPException) as exc:
                    own_errors[type(exc).__name__] += 1
                    conn.close()
        finally:
            conn.close()
            with lock:
                statuses.update(own_status)
                errors.update(own_errors)
                lateness.extend(own_late)
                last_done[0] = max(last_done[0], time.monotonic())

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 35)
    duration = last_done[0] - start
    lateness.sort()
    completed = sum(statuses.values())
    non2xx = sum(count for code, count in statuses.items() if not code.startswith("2"))
    return {
        "sent": completed,
        "non2xx": non2xx,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "duration_s": duration,
        "achieved_rate": completed / duration if duration > 0 else 0.0,
        "send_lateness_p99_ms": percentile(lateness, 99) * 1000,
    }


def wait_drained(db_url: str, timeout: float) -> tuple[bool, float]:
    """Until every outbox event is processed (bounded); returns (drained, seconds waited)."""
    started = time.monotonic()
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM retries_outboxevent WHERE processed_at IS NULL").fetchone()
            if row is not None and row[0] == 0:
                return True, time.monotonic() - started
            if time.monotonic() - started > timeout:
                return False, time.monotonic() - started
            time.sleep(0.2)


LATENCY_SQL = """
SELECT count(*),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms),
       max(ms)
FROM (
    SELECT extract(epoch FROM d.created_at - {start}) * 1000 AS ms
    FROM receipts_receipt r
    JOIN retries_outboxevent e ON e.receipt_id = r.id
    JOIN retries_decision d ON d.outbox_event_id = e.id
) latencies
"""


def measure(db_url: str) -> dict[str, object]:
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:

        def one(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else 0

        result: dict[str, object] = {}
        for name, start in (("received_to_decision", "r.received_at"), ("outbox_to_decision", "e.created_at")):
            count, (p50, p95, p99), worst = conn.execute(LATENCY_SQL.format(start=start)).fetchone()  # type: ignore[misc]
            result[name] = {"count": count, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "max_ms": float(worst or 0)}
        result["receipts"] = one("SELECT count(*) FROM receipts_receipt")
        result["applied"] = one("SELECT count(*) FROM receipts_receipt WHERE outcome = 'applied'")
        result["outbox_events"] = one("SELECT count(*) FROM retries_outboxevent")
        result["unprocessed"] = one("SELECT count(*) FROM retries_outboxevent WHERE processed_at IS NULL")
        result["decisions"] = one("SELECT count(*) FROM retries_decision")
        result["applied_without_exactly_one_decision"] = one(
            "SELECT count(*) FROM receipts_receipt r WHERE r.outcome = 'applied' AND ("
            " SELECT count(*) FROM retries_outboxevent e JOIN retries_decision d ON d.outbox_event_id = e.id"
            " WHERE e.receipt_id = r.id) <> 1"
        )
        rows = conn.execute(
            "SELECT action, state, count(*) FROM retries_decision GROUP BY 1, 2 ORDER BY 3 DESC"
        ).fetchall()
        result["by_action_state"] = {f"{action}/{state}": int(count) for action, state, count in rows}
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    db_url = database_url(args.pg_url, args.database)
    queue = BrokerQueue(args.redis_url)
    workdir = Path(tempfile.mkdtemp(prefix="dlr-bench-latency-"))
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    n = args.receipts
    print(
        f"DLR Console decision latency: {n} receipts at {args.rate:g}/s, gunicorn {args.workers} sync workers,"
        f" celery prefork x{args.concurrency}, {os.cpu_count()} CPUs",
        flush=True,
    )
    problems: list[str] = []
    load: dict[str, object] = {}
    result: dict[str, object] = {}
    drained, waited = False, 0.0
    try:
        queue.client.ping()
        create_database(args.pg_url, args.database)
        env = server_env(args, db_url, queue)
        django_env = {**env, "DJANGO_SETTINGS_MODULE": "dlrconsole.settings"}
        manage(django_env, "migrate", "--noinput", "-v", "0")
        manage(django_env, "create_connection", SLUG, "--provider", "standard-webhooks", "--secret", secret)
        with psycopg.connect(db_url, connect_timeout=10) as conn:
            row = conn.execute("SELECT id FROM receipts_connection WHERE slug = %s", [SLUG]).fetchone()
            rules = conn.execute("SELECT count(*) FROM retries_rule WHERE enabled").fetchone()
        assert row is not None
        assert rules is not None
        if not rules[0]:
            raise RuntimeError("no enabled rule after migrate: the default rule set is missing")
        insert_messages(db_url, int(row[0]), n)
        queue.delete()
        with (
            CeleryWorker(env=env, queue=queue.name, concurrency=args.concurrency, log_path=workdir / "celery.log"),
            Gunicorn(
                settings="dlrconsole.settings", env=env, workers=args.workers, log_path=workdir / "gunicorn.log"
            ) as server,
        ):
            warm_up(server.port, args.workers)
            hooks = build_hooks(secret, n)
            load = send_paced(hooks, server.port, args.rate, args.senders)
            drained, waited = wait_drained(db_url, args.drain_seconds)
        result = measure(db_url)
    except (Exception, KeyboardInterrupt) as exc:
        problems.append(f"benchmark aborted: {exc}")
    finally:
        for step in (queue.delete, lambda: None if args.keep else drop_database(args.pg_url, args.database)):
            try:
                step()
            except Exception as exc:
                print(f"cleanup: {exc}", file=sys.stderr)

    if result:
        if load["sent"] != n or load["errors"]:
            problems.append(f"{load['sent']} responses for {n} receipts (errors: {load['errors']})")
        if load["non2xx"]:
            problems.append(f"{load['non2xx']} non-2xx responses {load['statuses']}")
        if not drained:
            problems.append(f"{result['unprocessed']} outbox events still unprocessed after {args.drain_seconds:g} s")
        if result["applied"] != n:
            problems.append(f"{result['applied']} receipts applied, expected {n}")
        if result["applied_without_exactly_one_decision"]:
            problems.append(
                f"{result['applied_without_exactly_one_decision']} applied receipts without exactly one decision"
            )
        print_report(load, result, waited)
    for problem in problems:
        print(f"check failed: {problem}", file=sys.stderr)
    if problems:
        print(f"logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"load": load, "result": result, "problems": problems}, indent=2) + "\n")
    if args.keep:
        print(f"kept database {args.database}: {db_url}")
    return 1 if problems else 0


def print_report(load: dict[str, object], result: dict[str, object], waited: float) -> None:
    print(
        f"sent {load['sent']} receipts in {load['duration_s']:.2f} s = {load['achieved_rate']:.1f}/s achieved"
        f" (sender lateness p99 {load['send_lateness_p99_ms']:.1f} ms), non-2xx {load['non2xx']}"
        f", outbox drained {waited:.1f} s after the last response"
    )
    for name, label in (
        ("received_to_decision", "Receipt.received_at -> Decision.created_at"),
        ("outbox_to_decision", "OutboxEvent.created_at -> Decision.created_at"),
    ):
        lat = result[name]
        assert isinstance(lat, dict)
        print(
            f"{label:<46} n={lat['count']:<5} p50 {lat['p50_ms']:7.1f} ms  p95 {lat['p95_ms']:7.1f} ms"
            f"  p99 {lat['p99_ms']:7.1f} ms  max {lat['max_ms']:7.1f} ms"
        )
    print(
        f"receipts {result['receipts']} (applied {result['applied']}), outbox events {result['outbox_events']},"
        f" decisions {result['decisions']}, applied receipts without exactly one decision"
        f" {result['applied_without_exactly_one_decision']}"
    )
    print("decisions by action/state: " + ", ".join(f"{k} {v}" for k, v in result["by_action_state"].items()))  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(main())
