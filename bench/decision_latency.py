#!/usr/bin/env python
"""Receipt-to-executed-decision latency at a paced rate, with a real Celery worker and beat running.

On loopback only: a fresh database (migrated, so the default rules exist, the temporary-failure
rule's backoff set to [0] so retries run at once), a Standard Webhooks connection whose resends go
through a generic HTTP sender to a local gateway, a product endpoint on a local server, N queued
messages, gunicorn (2 gthread workers, gunicorn.conf.py), `celery worker` (prefork, concurrency 2) on a queue of its
own and `celery beat` with production's scheduler. N signed receipts (80 % `delivered`, 12 %
`undelivered` temporary → retry, 8 % `undelivered` permanent → notify) are posted at a constant
rate. Once everything is drained, per receipt, from Receipt.received_at:

1. to the decision recorded (Decision.created_at);
2. to the decision executed: for a notify, the product server got the feed POST (and
   FeedDelivery.delivered_at); for a retry, the gateway got the send (and Attempt.finished_at).

    .venv/bin/python bench/decision_latency.py [--receipts 4000] [--rate 200]

Exit status: 0 when every check passed (one decision per applied receipt, one succeeded attempt
and one gateway send per retry, one delivery per feed event, no non-2xx), 1 otherwise.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cpu_usage import CpuMeter, pid_named, postmaster_pid
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
    new_webhook_secret,
    percentile,
    provider_message_id,
    server_env,
    sign,
    warm_up,
)
from dlrconsole.queues import declared_queues

# (status, error_code, share): GSM MAP 27 absent subscriber is temporary (→ retry_same),
# GSM MAP 1 unknown subscriber is permanent (→ notify).
MIX = [("delivered", "", 0.80), ("undelivered", "27", 0.12), ("undelivered", "1", 0.08)]
ROUND = 1
BODY = "Your code is 123456"
NOTIFY, RETRY = "notify", "retry_same"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=4000, help="receipts (and messages) (default 4000)")
    parser.add_argument("--rate", type=float, default=200, help="receipts per second, paced (default 200)")
    parser.add_argument("--senders", type=int, default=4, help="sender threads, keep-alive (default 4)")
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers, gthread with gunicorn.conf.py's threads (default 2)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="celery prefork processes (default 2)")
    parser.add_argument(
        "--drain-seconds", type=float, default=240, help="wait for every decision to be executed (default 240)"
    )
    parser.add_argument(
        "--settle-seconds", type=float, default=6, help="then wait, so beat's passes show any duplicate (default 6)"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="maintenance database URL (loopback only)",
    )
    parser.add_argument("--database", default="dlrconsole_bench_decisions", help="bench database, dropped if it exists")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="broker (loopback only)")
    parser.add_argument(
        "--worker-settings",
        default="dlrconsole.settings",
        help="DJANGO_SETTINGS_MODULE of the Celery worker only, to try a settings change (default dlrconsole.settings)",
    )
    # A production database has statistics for its tables; the bench's start empty and grow
    # 0 -> N rows in a minute, before autovacuum first analyzes them (its launcher looks at a
    # database once a minute). Statements prepared meanwhile keep generic plans made for empty
    # tables (sequential scans of the outbox, the feed's deliveries, the decisions and the
    # attempts), and PostgreSQL's CPU for the same run went from ~24 to ~84 s (docs/SCALING.md).
    parser.add_argument(
        "--analyze-every",
        type=float,
        default=10,
        help="ANALYZE the bench database this often during the load, as autovacuum would a running "
        "database's (seconds; 0: never, as a fresh database under load; default 10)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database and the logs at the end")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.receipts < 1 or args.rate <= 0 or args.senders < 1 or args.workers < 1 or args.concurrency < 1:
        parser.error("--receipts, --rate, --senders, --workers and --concurrency must be positive")
    if args.receipts / args.rate > 600:
        parser.error("--receipts / --rate is at most 600 s")
    if not 0 < args.drain_seconds <= 600 or not 0 <= args.settle_seconds <= 60:
        parser.error("--drain-seconds must be in (0, 600], --settle-seconds in [0, 60]")
    if args.analyze_every != 0 and not 1 <= args.analyze_every <= 600:
        parser.error("--analyze-every is 0 (never) or 1 to 600 seconds")
    if not args.database.isidentifier():
        parser.error("--database must be a plain identifier")
    if not all(part.isidentifier() for part in args.worker_settings.split(".")):
        parser.error("--worker-settings must be a module path")
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


def expected_actions(n: int) -> Counter[str]:
    """The default rules' action for each receipt of the mix."""
    return Counter(RETRY if outcome_of(i)[1] == "27" else NOTIFY for i in range(n))


# --------------------------------------------------------------------------- setup


# Through the ORM (full_clean), as an admin would configure it, so a change of the models'
# validation shows here rather than as a silently broken run.
CONFIGURE = """
import os
from receipts.models import Connection
from retries.models import ConnectionSender, Step
from retries.feed.models import ProductEndpoint
connection = Connection.objects.get(slug=os.environ["BENCH_SLUG"])
sender = ConnectionSender(connection=connection, kind="generic-http", config={"url": os.environ["BENCH_GATEWAY_URL"]})
sender.full_clean()
sender.save()
endpoint = ProductEndpoint(
    name="bench product", url=os.environ["BENCH_PRODUCT_URL"], secret=os.environ["BENCH_FEED_SECRET"]
)
endpoint.full_clean()
endpoint.save()
changed = Step.objects.filter(rule__enabled=True, action="retry_same").update(delays=[0])
assert changed == 1, f"{changed} enabled retry_same steps, expected the default one"
"""


def configure(env: dict[str, str], peers: Peers, feed_secret: str) -> None:
    manage(
        {
            **env,
            "BENCH_SLUG": SLUG,
            "BENCH_GATEWAY_URL": f"http://{LOOPBACK}:{peers.gateway_port}/send",
            "BENCH_PRODUCT_URL": f"http://{LOOPBACK}:{peers.product_port}/feed",
            "BENCH_FEED_SECRET": feed_secret,
        },
        "shell", "-c", CONFIGURE,
    )  # fmt: skip


def insert_messages(db_url: str, connection_id: int, n: int) -> None:
    """N queued messages with a text (a resend needs it), in the fresh database."""
    now = datetime.now(UTC)
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        with conn.cursor() as cursor:
            copy_sql = (
                "COPY receipts_message (connection_id, provider_message_id, recipient, country, flow,"
                " client_reference, status, error_code, reason, error_class, submitted_at, created_at,"
                " body, fallback_email) FROM STDIN"
            )
            with cursor.copy(copy_sql) as copy:
                for i in range(n):
                    copy.write_row(
                        (connection_id, provider_message_id(ROUND, i), f"+3361{i:07d}", "FR", "otp", "", "queued",
                         "", "", "", now, now, BODY, "")
                    )  # fmt: skip
        conn.execute("VACUUM ANALYZE receipts_message")


def build_hooks(secret: str, n: int, rate: float) -> list[Hook]:
    """Signed before the run, each stamped with the time it is due to be sent: a run of more
    than the 5-minute tolerance stays inside it."""
    start = time.time()
    hooks = []
    for i in range(n):
        timestamp = int(start + i / rate)
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


# --------------------------------------------------------------------------- processes


class Child:
    """A child process in its own process group, its output logged, ready when a line contains
    `ready_marker`; stopped with TERM, then KILL of its group (a worker's pool, beat)."""

    def __init__(
        self, *, name: str, command: list[str], env: dict[str, str], log_path: Path, ready_marker: str
    ) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.ready_marker = ready_marker
        self.ready_line = ""
        self.process: subprocess.Popen[str] | None = None
        self.ready = threading.Event()
        self.reader: threading.Thread | None = None

    def __enter__(self) -> Child:
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            deadline = time.monotonic() + 60
            while not self.ready.wait(0.2):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not become ready within 60 s; see {self.log_path}")
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
                if not self.ready.is_set() and self.ready_marker in line:
                    self.ready_line = line
                    self.ready.set()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        # Whatever is left of the group (a pool process, an embedded beat) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        if self.reader is not None:
            self.reader.join(timeout=5)


def celery_worker(env: dict[str, str], queue: str, concurrency: int, log_path: Path, *, node: str = "bench") -> Child:
    """A worker on the bench's queues: its default queue and the decisions, feed and alerts
    queues named after it (dlrconsole/queues.py)."""
    queues = [declared.name for declared in declared_queues(queue)]
    command = [
        sys.executable, "-m", "celery", "-A", "dlrconsole", "worker",
        "--pool", "prefork", "--concurrency", str(concurrency),
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-Q", ",".join(queues), "--loglevel", "INFO", "--hostname", f"{node}-{os.getpid()}@%h",
    ]  # fmt: skip
    return Child(name="celery worker", command=command, env=env, log_path=log_path, ready_marker=" ready.")


def celery_beat(env: dict[str, str], workdir: Path, log_path: Path) -> Child:
    """Production's beat: a process of its own with the settings' scheduler (django-celery-beat's
    database scheduler, which installs CELERY_BEAT_SCHEDULE in the bench database)."""
    command = [
        sys.executable, "-m", "celery", "-A", "dlrconsole", "beat", "--loglevel", "INFO",
        "--schedule", str(workdir / "beat-schedule"),
    ]  # fmt: skip
    return Child(name="celery beat", command=command, env=env, log_path=log_path, ready_marker="Starting...")


class Peers(Child):
    """bench/peers.py: the product endpoint and the send gateway, in a process of their own."""

    def __init__(self, *, env: dict[str, str], workdir: Path, max_seconds: float) -> None:
        self.records_path = workdir / "peers.jsonl"
        command = [sys.executable, "-m", "bench.peers", "--log", str(self.records_path), "--max-seconds",
                   str(int(max_seconds))]  # fmt: skip
        super().__init__(name="peers", command=command, env=env, log_path=workdir / "peers.log", ready_marker="ready ")

    @property
    def product_port(self) -> int:
        return int(re.search(r"product=(\d+)", self.ready_line).group(1))  # type: ignore[union-attr]

    @property
    def gateway_port(self) -> int:
        return int(re.search(r"gateway=(\d+)", self.ready_line).group(1))  # type: ignore[union-attr]

    def records(self) -> list[dict[str, Any]]:
        """After stop(): every request the peers received."""
        if not self.records_path.exists():
            raise RuntimeError(f"the peers wrote no log; see {self.log_path}")
        return [json.loads(line) for line in self.records_path.read_text().splitlines()]


class QueueSampler:
    """Samples the bench queues' length every 0.25 s (the backlog the worker has not taken yet)."""

    def __init__(self, queue: BrokerQueue) -> None:
        self.queue = queue
        self.queues = declared_queues(queue.name)
        self.samples: list[tuple[float, int]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> QueueSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self.stopping.wait(0.25):
            with contextlib.suppress(Exception):
                self.samples.append((time.time(), sum(int(self.queue.client.llen(q.name)) for q in self.queues)))

    def summary(self) -> dict[str, float]:
        lengths = sorted(float(length) for _, length in self.samples)
        return {
            "samples": len(lengths),
            "p50": percentile(lengths, 50) if lengths else 0,
            "max": lengths[-1] if lengths else 0,
        }


class Analyzer:
    """ANALYZE the bench database every `every` seconds while the load runs (0: never), and
    count the passes. Bounded by the load: stopped when it ends."""

    def __init__(self, db_url: str, every: float) -> None:
        self.db_url, self.every = db_url, every
        self.passes = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Analyzer:
        if self.every:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        if self.every:
            self.thread.join(timeout=60)

    def _run(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True, connect_timeout=10) as conn:
            while not self.stopping.wait(self.every):
                conn.execute("ANALYZE")
                self.passes += 1


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


# --------------------------------------------------------------------------- measuring

DRAIN_SQL = {
    "outbox events unprocessed": "SELECT count(*) FROM receipts_outboxevent WHERE processed_at IS NULL",
    "feed deliveries open": "SELECT count(*) FROM feed_feeddelivery WHERE status IN ('pending', 'failed')",
    "attempts open": "SELECT count(*) FROM retries_attempt WHERE outcome IN ('scheduled', 'running')",
}


def wait_drained(db_url: str, timeout: float) -> tuple[bool, float, dict[str, int]]:
    """Until every event is decided, every feed delivery closed and every attempt finished
    (bounded); returns (drained, seconds waited, what was left)."""
    started = time.monotonic()
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        while True:
            left = {name: int(conn.execute(sql).fetchone()[0]) for name, sql in DRAIN_SQL.items()}  # type: ignore[index]
            if not any(left.values()):
                return True, time.monotonic() - started, left
            if time.monotonic() - started > timeout:
                return False, time.monotonic() - started, left
            time.sleep(0.1)


@dataclass
class Collected:
    """What the database and the peers recorded, times as epoch seconds."""

    receipts: list[tuple[Any, ...]]  # receipt id, message id, received, decision id, action, state, decided
    events: list[tuple[Any, ...]]  # event id, message id, type, created, delivery status, attempts, delivered
    attempts: list[tuple[Any, ...]]  # decision id, outcome, idempotency key, tries, finished, resend id
    counts: dict[str, int]
    decisions_by_action_state: dict[str, int]
    peers: list[dict[str, Any]] = field(default_factory=list)


def epoch(column: str) -> str:
    return f"extract(epoch FROM {column})::float8"


RECEIPTS_SQL = f"""
SELECT r.id, r.message_id, {epoch("r.received_at")}, d.id, d.action, d.state, {epoch("d.created_at")}
FROM receipts_receipt r
LEFT JOIN receipts_outboxevent e ON e.receipt_id = r.id
LEFT JOIN retries_decision d ON d.outbox_event_id = e.id
WHERE r.outcome = 'applied'
ORDER BY r.id
"""
EVENTS_SQL = f"""
SELECT fe.id, fe.message_id, fe.type, {epoch("fe.created_at")}, fd.status, fd.attempts, {epoch("fd.delivered_at")},
  fe.webhook_id
FROM feed_feedevent fe LEFT JOIN feed_feeddelivery fd ON fd.event_id = fe.id
"""
ATTEMPTS_SQL = f"""
SELECT decision_id, outcome, idempotency_key, tries, {epoch("finished_at")}, resend_id FROM retries_attempt
"""
COUNTS_SQL = {
    "receipts": "SELECT count(*) FROM receipts_receipt",
    "applied": "SELECT count(*) FROM receipts_receipt WHERE outcome = 'applied'",
    "outbox_events": "SELECT count(*) FROM receipts_outboxevent",
    "decisions": "SELECT count(*) FROM retries_decision",
    # Grouped joins, not a subquery per receipt: outbox events have no receipt_id index, and
    # the correlated form scanned them once per receipt (18 s at 18,000 receipts, most of an
    # hour at 90,000: the 5-minute run never got to print).
    "applied_without_exactly_one_decision": (
        "SELECT count(*) FROM (SELECT r.id FROM receipts_receipt r"
        " LEFT JOIN receipts_outboxevent e ON e.receipt_id = r.id"
        " LEFT JOIN retries_decision d ON d.outbox_event_id = e.id"
        " WHERE r.outcome = 'applied' GROUP BY r.id HAVING count(d.id) <> 1) wrong"
    ),
    "feed_attempts": "SELECT count(*) FROM feed_feedattempt",
    "feed_attempts_not_2xx": (
        "SELECT count(*) FROM feed_feedattempt WHERE status_code IS NULL OR status_code NOT BETWEEN 200 AND 299"
    ),
    "resends": "SELECT count(*) FROM receipts_message WHERE chain_root_id IS NOT NULL",
}


def collect(db_url: str) -> Collected:
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        counts = {name: int(conn.execute(sql).fetchone()[0]) for name, sql in COUNTS_SQL.items()}  # type: ignore[index]
        rows = conn.execute("SELECT action, state, count(*) FROM retries_decision GROUP BY 1, 2 ORDER BY 3 DESC")
        by_action_state = {f"{action}/{state}": int(count) for action, state, count in rows.fetchall()}
        return Collected(
            receipts=conn.execute(RECEIPTS_SQL).fetchall(),
            events=conn.execute(EVENTS_SQL).fetchall(),
            attempts=conn.execute(ATTEMPTS_SQL).fetchall(),
            counts=counts,
            decisions_by_action_state=by_action_state,
        )


def stats(values_s: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds of durations given in seconds."""
    values = sorted(v * 1000 for v in values_s)
    if not values:
        return {"n": 0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1],
    }


@dataclass
class Analysis:
    throughput: dict[str, float]
    latencies: dict[str, dict[str, float]]
    stages: dict[str, dict[str, float]]
    checks: dict[str, int]
    problems: list[str]


# Issue 15: at 300 receipts/s sustained for 5 minutes.
P95_BAR_MS = 1000
LATENCY_LABELS = {
    "decision": "decision recorded (Decision.created_at)",
    "executed_stamped": "executed, as stamped (delivered_at | finished_at)",
    "executed_peer": "executed, as the peer got it (product | gateway)",
    "notify_delivered_at": "  notify: FeedDelivery.delivered_at",
    "notify_product": "  notify: product server got the POST",
    "retry_finished_at": "  retry: Attempt.finished_at (succeeded)",
    "retry_gateway": "  retry: gateway got the send",
    "retry_scheduled_product": "  retry: its message.retry_scheduled at the product",
}
STAGE_LABELS = {
    "received_to_decision": "Receipt.received_at -> Decision.created_at",
    "decision_to_product": "notify: Decision.created_at -> product got the POST",
    "product_to_stamp": "notify: product got the POST -> reply recorded (delivered_at)",
    "decision_to_gateway": "retry: Decision.created_at -> gateway got the send",
    "gateway_to_stamp": "retry: gateway got the send -> reply recorded (finished_at)",
}


def analyse(data: Collected, n: int) -> Analysis:
    product: dict[str, list[dict[str, Any]]] = defaultdict(list)
    gateway: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in data.peers:
        (product[record["webhook_id"]] if record["peer"] == "product" else gateway[record["key"]]).append(record)
    events_by_message: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for event in data.events:
        events_by_message[event[1]].append(event)
    attempts_by_decision: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for attempt in data.attempts:
        attempts_by_decision[attempt[0]].append(attempt)

    lat: dict[str, list[float]] = defaultdict(list)
    stage: dict[str, list[float]] = defaultdict(list)
    checks: Counter[str] = Counter()
    seen_receipts: set[int] = set()
    for receipt_id, message_id, received, decision_id, action, _state, decided in data.receipts:
        if receipt_id in seen_receipts or decision_id is None:
            continue  # counted by applied_without_exactly_one_decision
        seen_receipts.add(receipt_id)
        lat["decision"].append(decided - received)
        stage["received_to_decision"].append(decided - received)
        events = events_by_message[message_id]
        if action == NOTIFY:
            checks["notify_decisions"] += 1
            told = [e for e in events if e[2] in ("message.delivered", "message.failed")]
            if len(told) != 1 or told[0][4] != "delivered" or told[0][5] != 1:
                checks["notify_events_not_delivered_once_in_db"] += 1
                continue
            delivered_at, webhook_id = told[0][6], told[0][7]
            got = product.get(webhook_id, [])
            if len(got) != 1:
                checks["notify_events_not_received_once_by_product"] += 1
                continue
            lat["notify_delivered_at"].append(delivered_at - received)
            lat["notify_product"].append(got[0]["t"] - received)
            lat["executed_stamped"].append(delivered_at - received)
            lat["executed_peer"].append(got[0]["t"] - received)
            stage["decision_to_product"].append(got[0]["t"] - decided)
            stage["product_to_stamp"].append(delivered_at - got[0]["t"])
        elif action == RETRY:
            checks["retry_decisions"] += 1
            attempts = attempts_by_decision[decision_id]
            if len(attempts) != 1 or attempts[0][1] != "succeeded" or attempts[0][5] is None:
                checks["retries_without_exactly_one_succeeded_attempt"] += 1
                continue
            _, _, key, tries, finished, _ = attempts[0]
            checks["attempt_runs_beyond_the_first"] += tries - 1
            calls = gateway.get(key, [])
            if sum(1 for call in calls if call["new"]) != 1:
                checks["retries_without_exactly_one_gateway_send"] += 1
                continue
            checks["gateway_repeated_calls"] += len(calls) - 1
            sent = calls[0]["t"]
            lat["retry_finished_at"].append(finished - received)
            lat["retry_gateway"].append(sent - received)
            lat["executed_stamped"].append(finished - received)
            lat["executed_peer"].append(sent - received)
            stage["decision_to_gateway"].append(sent - decided)
            stage["gateway_to_stamp"].append(finished - sent)
            scheduled = [e for e in events if e[2] == "message.retry_scheduled"]
            got = product.get(scheduled[0][7], []) if len(scheduled) == 1 else []
            if len(got) != 1:
                checks["retry_scheduled_events_not_received_once_by_product"] += 1
            else:
                lat["retry_scheduled_product"].append(got[0]["t"] - received)
        else:
            checks["decisions_of_another_action"] += 1
    checks["product_requests"] = sum(len(v) for v in product.values())
    checks["product_bad_signatures"] = sum(1 for v in product.values() for r in v if not r["signature_ok"])
    known_events = {e[7] for e in data.events}  # built once: inside the sum it was built per key
    checks["product_requests_for_unknown_events"] = sum(len(v) for k, v in product.items() if k not in known_events)
    known_keys = {a[2] for a in data.attempts}
    checks["gateway_calls_for_unknown_keys"] = sum(len(v) for k, v in gateway.items() if k not in known_keys)
    decided = sorted(row[6] for row in data.receipts if row[6] is not None)
    received = sorted(row[2] for row in data.receipts)
    throughput = {
        # Events decided per second, from the first receipt to the last decision: the worker keeps
        # up when this matches the arrival rate.
        "decided_per_s": len(decided) / (decided[-1] - received[0]) if decided and decided[-1] > received[0] else 0.0,
        "last_decision_after_last_receipt_s": decided[-1] - received[-1] if decided else 0.0,
    }
    problems = judge(checks, data, n)
    return Analysis(
        throughput=throughput,
        latencies={name: stats(lat[name]) for name in LATENCY_LABELS},
        stages={name: stats(stage[name]) for name in STAGE_LABELS},
        checks=dict(checks),
        problems=problems,
    )


def judge(checks: Counter[str], data: Collected, n: int) -> list[str]:
    problems = []
    must_be_zero = (
        "notify_events_not_delivered_once_in_db", "notify_events_not_received_once_by_product",
        "retries_without_exactly_one_succeeded_attempt", "retries_without_exactly_one_gateway_send",
        "retry_scheduled_events_not_received_once_by_product", "decisions_of_another_action",
        "product_bad_signatures", "product_requests_for_unknown_events", "gateway_calls_for_unknown_keys",
    )  # fmt: skip
    problems += [f"{name.replace('_', ' ')}: {checks[name]}" for name in must_be_zero if checks[name]]
    counts = data.counts
    if counts["applied"] != n:
        problems.append(f"{counts['applied']} receipts applied, expected {n}")
    if counts["applied_without_exactly_one_decision"]:
        problems.append(
            f"{counts['applied_without_exactly_one_decision']} applied receipts without exactly one decision"
        )
    expected = expected_actions(n)
    if (checks["notify_decisions"], checks["retry_decisions"]) != (expected[NOTIFY], expected[RETRY]):
        problems.append(
            f"{checks['notify_decisions']} notify and {checks['retry_decisions']} retry decisions,"
            f" expected {expected[NOTIFY]} and {expected[RETRY]}"
        )
    if counts["feed_attempts_not_2xx"]:
        problems.append(f"{counts['feed_attempts_not_2xx']} feed POSTs answered non-2xx or failed")
    if counts["resends"] != expected[RETRY]:
        problems.append(f"{counts['resends']} resend messages registered, expected {expected[RETRY]}")
    if checks["product_requests"] != len(data.events):
        problems.append(f"the product got {checks['product_requests']} POSTs for {len(data.events)} feed events")
    return problems


TASK_LINE = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded in ([0-9.]+)s: (.*)$")


def worker_tasks(log_path: Path) -> dict[str, dict[str, float]]:
    """Per task name, from the worker's log: runs and their busy (wall) seconds, those of the runs
    that found nothing to do (returned 0), and errors (a task that raised or was retried)."""
    tasks: dict[str, dict[str, float]] = defaultdict(
        lambda: {"runs": 0, "busy_s": 0.0, "idle_runs": 0, "idle_busy_s": 0.0}
    )
    errors = 0
    for line in log_path.read_text(errors="replace").splitlines() if log_path.exists() else []:
        match = TASK_LINE.search(line)
        if match:
            task, seconds = tasks[match.group(1).rsplit(".", 1)[-1]], float(match.group(2))
            task["runs"] += 1
            task["busy_s"] += seconds
            if match.group(3).strip() == "0":
                task["idle_runs"] += 1
                task["idle_busy_s"] += seconds
        elif " raised unexpected" in line or "] retry: " in line or "Traceback" in line:
            errors += 1
    return {**tasks, "errors": {"runs": errors, "busy_s": 0.0, "idle_runs": 0, "idle_busy_s": 0.0}}


# --------------------------------------------------------------------------- the run


@dataclass
class Outcome:
    load: dict[str, object] = field(default_factory=dict)
    drained: bool = False
    waited: float = 0.0
    left: dict[str, int] = field(default_factory=dict)
    queue: dict[str, float] = field(default_factory=dict)
    tasks: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_others: dict[str, float] = field(default_factory=dict)
    db_sessions: int = 0
    db_active_share: float = 0.0  # the bench database's share of PostgreSQL's statement time
    data: Collected | None = None
    # The machine's 1-minute load average when the load starts, ends, and every decision is executed.
    loadavg: dict[str, float] = field(default_factory=dict)
    analyzed: int = 0  # ANALYZE passes during the load (--analyze-every)


def run(args: argparse.Namespace, db_url: str, queue: BrokerQueue, workdir: Path) -> Outcome:
    n = args.receipts
    secret = new_webhook_secret()
    feed_secret = new_webhook_secret()
    out = Outcome()
    create_database(args.pg_url, args.database)
    env = {
        **server_env(args, db_url, queue),
        "DJANGO_SETTINGS_MODULE": "dlrconsole.settings",
    }
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "create_connection", SLUG, "--provider", "standard-webhooks", f"--secret={secret}")
    with psycopg.connect(db_url, connect_timeout=10) as conn:
        row = conn.execute("SELECT id FROM receipts_connection WHERE slug = %s", [SLUG]).fetchone()
    assert row is not None
    insert_messages(db_url, int(row[0]), n)
    queue.delete()
    # Bounded: the peers exit by themselves after the longest the run may take.
    lifetime = n / args.rate + args.drain_seconds + args.settle_seconds + 600
    peers = Peers(env={**env, "BENCH_FEED_SECRET": feed_secret}, workdir=workdir, max_seconds=lifetime)
    with peers:
        configure(env, peers, feed_secret)
        with (
            celery_worker(
                {**env, "DJANGO_SETTINGS_MODULE": args.worker_settings},
                queue.name,
                args.concurrency,
                workdir / "celery.log",
            ) as worker,
            celery_beat(env, workdir, workdir / "beat.log") as beat,
            Gunicorn(
                settings="dlrconsole.settings", env=env, workers=args.workers, log_path=workdir / "gunicorn.log"
            ) as server,
            QueueSampler(queue) as sampler,
        ):
            warm_up(server.port, args.workers)
            hooks = build_hooks(secret, n, args.rate)
            meter = cpu_meter(gunicorn=server, worker=worker, beat=beat, peers=peers)
            sessions, active = db_sessions(db_url), db_active_seconds(db_url)
            meter.begin()
            out.loadavg["start"] = os.getloadavg()[0]
            with Analyzer(db_url, args.analyze_every) as analyzer:
                out.load = send_paced(hooks, server.port, args.rate, args.senders)
            out.analyzed = analyzer.passes
            out.loadavg["end of load"] = os.getloadavg()[0]
            out.drained, out.waited, out.left = wait_drained(db_url, args.drain_seconds)
            out.loadavg["drained"] = os.getloadavg()[0]
            out.cpu = meter.end()
            out.cpu_others = meter.others_by_label
            out.db_sessions = db_sessions(db_url) - sessions
            mine, every = db_active_seconds(db_url)
            out.db_active_share = (mine - active[0]) / (every - active[1]) if every > active[1] else 0.0
            time.sleep(args.settle_seconds)
        out.queue = sampler.summary()
    out.tasks = worker_tasks(workdir / "celery.log")
    out.data = collect(db_url)
    out.data.peers = peers.records()
    return out


def db_sessions(db_url: str) -> int:
    """Sessions (connections) opened on the bench database so far: each is a new backend process."""
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def cpu_meter(*, gunicorn: Gunicorn, worker: Child, beat: Child, peers: Child) -> CpuMeter:
    def root(process: subprocess.Popen[bytes] | subprocess.Popen[str] | None) -> Callable[[], int | None]:
        return lambda: process.pid if process is not None else None

    return CpuMeter(
        roots={
            "gunicorn": root(gunicorn.process),
            "celery worker": root(worker.process),
            "beat": root(beat.process),
            "peers": root(peers.process),
            "postgres (all databases)": postmaster_pid,
            "redis-server": lambda: pid_named("redis-server"),
        }
    )


def db_active_seconds(db_url: str) -> tuple[float, float]:
    """(this database, every database): seconds spent running statements so far."""
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT sum(active_time) FILTER (WHERE datname = current_database()), sum(active_time)"
            " FROM pg_stat_database"
        ).fetchone()
    return (float(row[0] or 0) / 1000, float(row[1] or 0) / 1000) if row else (0.0, 0.0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    db_url = database_url(args.pg_url, args.database)
    queue = BrokerQueue(args.redis_url)
    workdir = Path(tempfile.mkdtemp(prefix="dlr-bench-latency-"))
    n = args.receipts
    print(
        f"DLR Console decision latency: {n} receipts at {args.rate:g}/s,"
        f" gunicorn {args.workers} gthread workers (gunicorn.conf.py),"
        f" celery prefork x{args.concurrency} + beat ({args.worker_settings}), {os.cpu_count()} CPUs,"
        f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    problems: list[str] = []
    out = Outcome()
    analysis: Analysis | None = None
    try:
        queue.client.ping()
        out = run(args, db_url, queue, workdir)
    except (Exception, KeyboardInterrupt) as exc:
        problems.append(f"benchmark aborted: {exc}")
    finally:
        for step in (queue.delete, lambda: None if args.keep else drop_database(args.pg_url, args.database)):
            try:
                step()
            except Exception as exc:
                print(f"cleanup: {exc}", file=sys.stderr)

    if out.data is not None:
        analysis = analyse(out.data, n)
        load = out.load
        if load["sent"] != n or load["errors"]:
            problems.append(f"{load['sent']} responses for {n} receipts (errors: {load['errors']})")
        if load["non2xx"]:
            problems.append(f"{load['non2xx']} non-2xx responses {load['statuses']}")
        if not out.drained:
            problems.append(f"not drained after {args.drain_seconds:g} s: {out.left}")
        if out.tasks.get("errors", {}).get("runs"):
            problems.append(f"{out.tasks['errors']['runs']} task errors in the worker's log")
        problems += analysis.problems
        print_report(out, analysis, args)
    for problem in problems:
        print(f"check failed: {problem}", file=sys.stderr)
    if problems or args.keep:
        print(f"logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        report = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "load": out.load, "drained": out.drained, "drain_waited_s": out.waited, "queue_length": out.queue,
            "worker_tasks": out.tasks, "cpu_s": out.cpu, "cpu_others_s": out.cpu_others, "db_sessions": out.db_sessions,
            "db_active_share": out.db_active_share, "analyze_passes": out.analyzed,
            "counts": out.data.counts if out.data else {},
            "decisions_by_action_state": out.data.decisions_by_action_state if out.data else {},
            "throughput": analysis.throughput if analysis else {},
            "latencies": analysis.latencies if analysis else {}, "stages": analysis.stages if analysis else {},
            "checks": analysis.checks if analysis else {}, "problems": problems,
        }  # fmt: skip
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.keep:
        print(f"kept database {args.database}: {db_url}")
    return 1 if problems else 0


def fmt_stats(label: str, s: dict[str, float]) -> str:
    return (
        f"  {label:<62} n={int(s['n']):<5} p50 {s['p50_ms']:7.1f}  p95 {s['p95_ms']:7.1f}"
        f"  p99 {s['p99_ms']:7.1f}  max {s['max_ms']:7.1f}"
    )


def print_report(out: Outcome, analysis: Analysis, args: argparse.Namespace) -> None:
    load, data = out.load, out.data
    assert data is not None
    print(
        f"sent {load['sent']} receipts in {load['duration_s']:.2f} s = {load['achieved_rate']:.1f}/s achieved"
        f" (sender lateness p99 {load['send_lateness_p99_ms']:.1f} ms), non-2xx {load['non2xx']};"
        f" all executed {out.waited:.1f} s after the last response, then {args.settle_seconds:g} s settle"
    )
    print(
        f"decided {analysis.throughput['decided_per_s']:.1f} events/s (first receipt to last decision);"
        f" last decision {analysis.throughput['last_decision_after_last_receipt_s']:.1f} s after the last receipt"
    )
    print("load average (1 min): " + ", ".join(f"{name} {value:.2f}" for name, value in out.loadavg.items()))
    executed = analysis.latencies["executed_peer"]
    verdict = "PASS" if executed["p95_ms"] < P95_BAR_MS else "FAIL"
    print(f"receipt to action p95 {executed['p95_ms']:.0f} ms  ->  {verdict} (bar < {P95_BAR_MS} ms)")
    print("latency from Receipt.received_at, ms")
    for name, label in LATENCY_LABELS.items():
        print(fmt_stats(label, analysis.latencies[name]))
    print("stages, ms")
    for name, label in STAGE_LABELS.items():
        print(fmt_stats(label, analysis.stages[name]))
    analyzed = f"every {args.analyze_every:g} s, {out.analyzed} passes" if args.analyze_every else "none"
    print(
        f"broker queue length (sampled every 0.25 s): p50 {out.queue.get('p50', 0):g}, max {out.queue.get('max', 0):g};"
        f" database sessions opened {out.db_sessions}; ANALYZE during the load: {analyzed}"
    )
    print(
        "worker tasks (runs, wall seconds; of which found nothing to do): "
        + ", ".join(
            f"{name} {int(t['runs'])} / {t['busy_s']:.1f} s ({int(t['idle_runs'])} / {t['idle_busy_s']:.1f} s)"
            for name, t in out.tasks.items()
            if name != "errors"
        )
        + f"; task errors {int(out.tasks.get('errors', {}).get('runs', 0))}"
    )
    if out.cpu:
        cpu = out.cpu
        parts = {k: v for k, v in cpu.items() if k not in ("machine busy", "machine capacity", "window_s", "cpus")}
        print(
            f"CPU from the first receipt to the last execution ({cpu['window_s']:.1f} s x {int(cpu['cpus'])} CPUs):"
            f" machine busy {cpu['machine busy']:.1f} of {cpu['machine capacity']:.1f} CPU-s"
            f" ({100 * cpu['machine busy'] / max(cpu['machine capacity'], 1e-9):.0f} %); "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in parts.items())
            + f" (the bench database ran {100 * out.db_active_share:.0f} % of PostgreSQL's statement time;"
            + " others' largest: "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in list(out.cpu_others.items())[:6])
            + ")"
        )
    c, k = data.counts, analysis.checks
    print(
        f"checks: receipts {c['receipts']} (applied {c['applied']}), decisions {c['decisions']}"
        f" ({', '.join(f'{a} {v}' for a, v in data.decisions_by_action_state.items())}),"
        f" applied without exactly one decision {c['applied_without_exactly_one_decision']};"
        f" retries {k.get('retry_decisions', 0)}: without exactly one succeeded attempt"
        f" {k.get('retries_without_exactly_one_succeeded_attempt', 0)}, without exactly one gateway send"
        f" {k.get('retries_without_exactly_one_gateway_send', 0)},"
        f" repeated gateway calls {k.get('gateway_repeated_calls', 0)},"
        f" resends registered {c['resends']};"
        f" notify {k.get('notify_decisions', 0)}: event not delivered exactly once"
        f" {k.get('notify_events_not_delivered_once_in_db', 0)} in the database,"
        f" {k.get('notify_events_not_received_once_by_product', 0)} at the product;"
        f" feed events {len(data.events)}, product POSTs {k.get('product_requests', 0)}"
        f" (bad signatures {k.get('product_bad_signatures', 0)}), feed POSTs non-2xx {c['feed_attempts_not_2xx']}"
    )


if __name__ == "__main__":
    sys.exit(main())
