#!/usr/bin/env python
"""The same paced load on one "machine" and on two: web processes, Celery workers and beats
against one PostgreSQL and one Redis, all on loopback.

- one:  1 gunicorn, 1 Celery worker, 1 beat;
- two:  2 gunicorn (the load split between them), 2 Celery workers, 2 beats (the second must
        stay idle behind the beat lock, dlrconsole/beat.py).

Each topology gets a fresh database and the decision bench's traffic (bench/decision_latency.py:
80 % delivered, 12 % temporary failures retried through a local gateway, 8 % permanent failures
told to a local product endpoint), posted at --rate. Reported per topology: the rate achieved,
decisions per second, receipt-to-decision and receipt-to-executed latencies, the periodic tasks
each beat sent, and the exactly-once checks (one decision per applied receipt, one send per
retry, one delivery per feed event). The ratio two/one of decisions per second is the figure.

    .venv/bin/python bench/several_machines.py [--receipts 3000] [--rate 300]

Exit status: 0 when every check passed in both topologies, 1 otherwise. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.decision_latency import (
    Peers,
    analyse,
    build_hooks,
    celery_beat,
    celery_worker,
    collect,
    configure,
    insert_messages,
    send_paced,
    wait_drained,
)
from bench.ingest_throughput import (
    SLUG,
    BrokerQueue,
    Gunicorn,
    create_database,
    database_url,
    drop_database,
    is_loopback,
    manage,
    new_webhook_secret,
    server_env,
    warm_up,
)

TOPOLOGIES = {"one": (1, 1, 1), "two": (2, 2, 2)}  # web processes, workers, beats


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=3000, help="receipts (and messages) per topology")
    parser.add_argument("--rate", type=float, default=300, help="receipts per second, paced (default 300)")
    parser.add_argument("--senders", type=int, default=4, help="sender threads per web process (default 4)")
    parser.add_argument(
        "--gunicorn-workers", type=int, default=2, help="workers per gunicorn, gthread as gunicorn.conf.py (default 2)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="prefork processes per Celery worker")
    parser.add_argument("--drain-seconds", type=float, default=240, help="wait for every decision (default 240)")
    parser.add_argument("--settle-seconds", type=float, default=6, help="then wait for duplicates to show")
    parser.add_argument("--beat-lock-seconds", type=int, default=9, help="DLR_BEAT_LOCK_SECONDS (default 9)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="maintenance database URL (loopback only)",
    )
    parser.add_argument("--database", default="dlrconsole_bench_machines", help="bench database, dropped first")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="broker (loopback only)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args(argv)
    if min(args.receipts, args.senders, args.gunicorn_workers, args.concurrency) < 1 or args.rate <= 0:
        parser.error("--receipts, --rate, --senders, --gunicorn-workers and --concurrency must be positive")
    if args.receipts / args.rate > 240:
        parser.error("--receipts / --rate is at most 240 s: receipts are signed before the run")
    if not 0 < args.drain_seconds <= 600 or not 0 <= args.settle_seconds <= 60:
        parser.error("--drain-seconds must be in (0, 600], --settle-seconds in [0, 60]")
    if not 3 <= args.beat_lock_seconds <= 600 or not args.database.isidentifier():
        parser.error("--beat-lock-seconds must be in [3, 600] and --database a plain identifier")
    for url in (args.pg_url, args.redis_url):
        if not is_loopback(urlsplit(url).hostname or ""):
            parser.error(f"{url}: the benchmark runs on loopback only")
    return args


@dataclass
class Result:
    name: str
    achieved_rate: float = 0.0
    non2xx: int = 0
    drained: bool = False
    decided_per_s: float = 0.0
    latencies: dict[str, dict[str, float]] = field(default_factory=dict)
    beat_sends: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def beat_sends(log_path: Path) -> int:
    """Periodic tasks a beat sent, from its log (celery beat logs each one at INFO)."""
    return len(re.findall(r"Sending due task", log_path.read_text())) if log_path.exists() else 0


def send_split(hooks: list[Any], ports: list[int], rate: float, senders: int) -> dict[str, Any]:
    """The hooks dealt round-robin to the web processes, each paced at its share of the rate."""
    shares = [hooks[i :: len(ports)] for i in range(len(ports))]
    results: list[dict[str, Any]] = [{} for _ in ports]

    def send(i: int) -> None:
        results[i] = send_paced(shares[i], ports[i], rate / len(ports), senders)

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(len(ports))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=len(hooks) / rate + 120)
    duration = max(result.get("duration_s", 0.0) for result in results)
    sent = sum(result.get("sent", 0) for result in results)
    return {
        "sent": sent,
        "non2xx": sum(result.get("non2xx", 0) for result in results),
        "errors": sum(sum(result.get("errors", {}).values()) for result in results),
        "achieved_rate": sent / duration if duration > 0 else 0.0,
    }


def run_topology(args: argparse.Namespace, name: str, workdir: Path) -> Result:
    web, workers, beats = TOPOLOGIES[name]
    result = Result(name)
    n = args.receipts
    db_url = database_url(args.pg_url, args.database)
    queue = BrokerQueue(args.redis_url)
    secret = new_webhook_secret()
    feed_secret = new_webhook_secret()
    create_database(args.pg_url, args.database)
    try:
        env = {
            **server_env(args, db_url, queue),
            "DJANGO_SETTINGS_MODULE": "dlrconsole.settings",
            "DLR_BEAT_LOCK_SECONDS": str(args.beat_lock_seconds),
        }
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "create_connection", SLUG, "--provider", "standard-webhooks", f"--secret={secret}")
        with psycopg.connect(db_url, connect_timeout=10) as conn:
            row = conn.execute("SELECT id FROM receipts_connection WHERE slug = %s", [SLUG]).fetchone()
        assert row is not None
        insert_messages(db_url, int(row[0]), n)
        queue.delete()
        lifetime = n / args.rate + args.drain_seconds + args.settle_seconds + 600
        peers = Peers(env={**env, "BENCH_FEED_SECRET": feed_secret}, workdir=workdir, max_seconds=lifetime)
        with peers, contextlib.ExitStack() as stack:
            configure(env, peers, feed_secret)
            for i in range(workers):
                log = workdir / f"{name}-worker-{i}.log"
                stack.enter_context(celery_worker(env, queue.name, args.concurrency, log, node=f"bench{i}"))
            beat_logs = []
            for i in range(beats):
                beat_dir = workdir / f"{name}-beat-{i}"
                beat_dir.mkdir()
                beat_logs.append(workdir / f"{name}-beat-{i}.log")
                stack.enter_context(celery_beat(env, beat_dir, beat_logs[-1]))
            servers = [
                stack.enter_context(
                    Gunicorn(
                        settings="dlrconsole.settings",
                        env=env,
                        workers=args.gunicorn_workers,
                        log_path=workdir / f"{name}-gunicorn-{i}.log",
                    )
                )
                for i in range(web)
            ]
            for server in servers:
                warm_up(server.port, args.gunicorn_workers)
            load = send_split(build_hooks(secret, n), [server.port for server in servers], args.rate, args.senders)
            result.achieved_rate, result.non2xx = load["achieved_rate"], load["non2xx"]
            result.drained, _waited, left = wait_drained(db_url, args.drain_seconds)
            time.sleep(args.settle_seconds)
        result.beat_sends = [beat_sends(log) for log in beat_logs]
        data = collect(db_url)
        data.peers = peers.records()
        analysis = analyse(data, n)
        result.decided_per_s = analysis.throughput["decided_per_s"]
        result.latencies = analysis.latencies
        result.problems = list(analysis.problems)
        if load["sent"] != n or load["errors"] or load["non2xx"]:
            result.problems.append(
                f"{load['sent']} responses for {n}, {load['non2xx']} non-2xx, {load['errors']} errors"
            )
        if not result.drained:
            result.problems.append(f"not drained after {args.drain_seconds:g} s: {left}")
        if beats > 1 and sorted(result.beat_sends)[:-1] != [0] * (beats - 1):
            result.problems.append(f"more than one beat sent periodic tasks: {result.beat_sends}")
    finally:
        queue.delete()
        drop_database(args.pg_url, args.database)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="dlr-bench-machines-"))
    load1, _, _ = os.getloadavg()
    print(
        f"DLR Console on one and two machines: {args.receipts} receipts at {args.rate:g}/s per topology,"
        f" gunicorn x{args.gunicorn_workers} and celery prefork x{args.concurrency} per process,"
        f" {os.cpu_count()} CPUs, load average {load1:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    results = []
    for name in TOPOLOGIES:
        try:
            results.append(run_topology(args, name, workdir))
        except (Exception, KeyboardInterrupt) as exc:
            results.append(Result(name, problems=[f"aborted: {exc}"]))
    for result in results:
        web, workers, beats = TOPOLOGIES[result.name]
        decision = result.latencies.get("decision", {})
        executed = result.latencies.get("executed_stamped", {})
        print(
            f"{result.name}: {web} web, {workers} workers, {beats} beats:"
            f" achieved {result.achieved_rate:.1f} receipts/s,"
            f" decided {result.decided_per_s:.1f}/s; receipt->decision p50 {decision.get('p50_ms', 0):.0f} ms"
            f" p95 {decision.get('p95_ms', 0):.0f} ms; receipt->executed p95 {executed.get('p95_ms', 0):.0f} ms;"
            f" periodic tasks sent per beat {result.beat_sends}; "
            + ("checks ok" if not result.problems else "CHECKS FAILED: " + "; ".join(result.problems))
        )
    if len(results) == 2 and results[0].decided_per_s > 0:
        print(f"ratio two/one, decisions per second: {results[1].decided_per_s / results[0].decided_per_s:.2f}")
    failed = any(result.problems for result in results)
    if failed or args.keep_logs:
        print(f"logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
