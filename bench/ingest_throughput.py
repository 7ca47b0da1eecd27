#!/usr/bin/env python
"""Ingest throughput: the project's webhook against a minimal Django view doing the same DB work.

Everything runs on loopback: a fresh PostgreSQL database, gunicorn, Redis, the load generator.
Each run (project, then reference, per round) starts from the same state: N messages freshly
inserted, no receipts, no outbox rows. N distinct, correctly signed Standard Webhooks receipts
(one per message, `delivered`) are posted with concurrency C; throughput, p50/p99 latency and
non-2xx are measured, then the database is checked: N receipts, N messages delivered (and for
the project N outbox rows, none left unpublished, and a task waiting for them in Redis).

    .venv/bin/python bench/ingest_throughput.py [--receipts 5000] [--concurrency 16] [--workers 2]

Exit status: 0 when every check passed (the ratio bar is reported, not enforced unless
--strict), 1 when a check failed (lost or extra receipts, messages not delivered, non-2xx),
2 with --strict when the ratio is below the bar. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlrconsole.lib.standard_webhooks import sign  # noqa: E402

# Issue 12: with rollup maintenance running beside the webhook (bench/rollup_passes.py).
BAR = 0.8
# Issue 15: receipts/s through gunicorn when they come in Infobip batches of 1,000 (--batch).
BATCH_BAR = 20_000
SLUG = "bench"
INFOBIP_SLUG = "bench-infobip"
LOOPBACK = "127.0.0.1"
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_replay.lua"
TARGETS = {
    # name → DJANGO_SETTINGS_MODULE served by gunicorn
    "project": "dlrconsole.settings",
    "reference": "bench.reference_settings",
}


# --------------------------------------------------------------------------- options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=5000, help="receipts (and messages) per run (default 5000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers, gthread with gunicorn.conf.py's threads (default 2)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="project+reference runs, medians reported (default 1)")
    parser.add_argument(
        "--client", choices=["auto", "wrk", "python"], default="auto", help="load generator (auto: wrk if installed)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=240, help="hard wall-clock cap of one load run (default 240, at most 280)"
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="maintenance database URL used to create and drop the bench database (loopback only)",
    )
    parser.add_argument("--database", default="dlrconsole_bench", help="bench database name, dropped if it exists")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="broker for the outbox publish")
    parser.add_argument("--keep", action="store_true", help="keep the bench database at the end")
    parser.add_argument(
        "--no-rollups", dest="rollups", action="store_false", help="no rollup passes beside the project's runs"
    )
    parser.add_argument("--strict", action="store_true", help="exit 2 when the ratio is below the bar")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--batch", type=int, default=0,
        help="the project posts Infobip batches of this many reports (at most 1000); the reference stays single",
    )  # fmt: skip
    parser.add_argument(
        "--stored-share", type=float, default=0.4,
        help="with --batch: share of each batch's reports posted before the timed run (default 0.4)",
    )  # fmt: skip
    parser.add_argument(
        "--reference-receipts", type=int, default=2000,
        help="with --batch: receipts of the single-receipt reference runs (default 2000)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.batch and not (2 <= args.batch <= 1000 and args.receipts % args.batch == 0):
        parser.error("--batch must be 2-1000 and divide --receipts")
    if not 0 <= args.stored_share < 1:
        parser.error("--stored-share must be in [0, 1)")
    if not 1 <= args.concurrency <= args.receipts:
        parser.error("--concurrency must be between 1 and --receipts")
    if args.workers < 1 or args.rounds < 1 or args.receipts < 1 or args.max_seconds <= 0:
        parser.error("--workers, --rounds, --receipts and --max-seconds must be positive")
    if args.max_seconds > 280:
        parser.error("--max-seconds is at most 280: receipts are signed before the run, valid for 5 minutes")
    if not args.database.isidentifier():
        parser.error("--database must be a plain identifier")
    for url in (args.pg_url, args.redis_url):
        host = urlsplit(url).hostname or ""
        if not is_loopback(host):
            parser.error(f"{url}: the benchmark runs on loopback only")
    return args


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- database


def database_url(pg_url: str, name: str) -> str:
    parts = urlsplit(pg_url)
    return urlunsplit(parts._replace(path="/" + name))


def create_database(pg_url: str, name: str) -> None:
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(pg_url: str, name: str) -> None:
    with psycopg.connect(pg_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def provider_message_id(round_no: int, i: int) -> str:
    return f"bench-r{round_no}-{i:07d}"


def reset_data(db_url: str, connection_id: int, n: int, round_no: int) -> None:
    """Empty receipts, outbox and messages; insert N queued messages; vacuum them; checkpoint.

    TRUNCATE (not UPDATE) so both targets start on the same fresh, bloat-free tables."""
    now = datetime.now(UTC)
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        # CASCADE: whatever else references messages (decisions, the feed, alerts) is empty here too.
        conn.execute(
            "TRUNCATE retries_attempt, retries_decision, receipts_outboxevent, receipts_receipt, receipts_message,"
            " receipts_rolluppending, rollups_rollup, rollups_rollupreason, rollups_snapshot RESTART IDENTITY CASCADE"
        )
        with conn.cursor() as cursor:
            copy_sql = (
                "COPY receipts_message (connection_id, provider_message_id, recipient, country, flow,"
                " client_reference, status, error_code, reason, error_class, submitted_at, created_at, body,"
                " fallback_email) FROM STDIN"
            )
            with cursor.copy(copy_sql) as copy:
                for i in range(n):
                    recipient = f"+3361{i:07d}"
                    copy.write_row(
                        (connection_id, provider_message_id(round_no, i), recipient, "FR", "", "", "queued", "", "", "",
                         now, now, "", "")
                    )  # fmt: skip
        # The messages only: TRUNCATE left the receipts and the outbox as a new table is, never
        # analyzed, which the planner takes for at least ten pages. Analyzed empty, they were
        # taken for empty: each web process planned its first receipt's foreign-key check
        # (outbox row -> receipt) as a sequential scan and kept that plan for the round, one
        # scan of every receipt so far per request; a production table is neither empty nor
        # without statistics (bench/README.md, "The batch, stop 25").
        conn.execute("VACUUM ANALYZE receipts_message")
        conn.execute("CHECKPOINT")


@dataclass
class Checks:
    receipts: int = 0
    receipts_applied: int = 0
    messages: int = 0
    delivered: int = 0
    outbox: int = 0
    outbox_unpublished: int = 0
    redis_published: int | None = None
    # Rollup passes beside the project's runs: runs, messages counted, queue left at the end.
    rollups: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


def check_database(db_url: str, n: int, *, target: str, published: int | None) -> Checks:
    checks = Checks(redis_published=published)
    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:

        def one(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else 0

        checks.receipts = one("SELECT count(*) FROM receipts_receipt")
        checks.receipts_applied = one(
            "SELECT count(*) FROM receipts_receipt WHERE outcome = 'applied' AND message_id IS NOT NULL"
        )
        checks.messages = one("SELECT count(*) FROM receipts_message")
        checks.delivered = one("SELECT count(*) FROM receipts_message WHERE status = 'delivered'")
        checks.outbox = one("SELECT count(*) FROM receipts_outboxevent")
        checks.outbox_unpublished = one("SELECT count(*) FROM receipts_outboxevent WHERE dispatched_at IS NULL")
    if checks.receipts != n:
        checks.problems.append(f"{checks.receipts} receipt rows for {n} receipts sent")
    if checks.receipts_applied != n:
        checks.problems.append(f"{checks.receipts_applied} receipts applied to their message, expected {n}")
    if checks.delivered != n or checks.messages != n:
        checks.problems.append(f"{checks.delivered} of {checks.messages} messages delivered, expected {n} of {n}")
    if target == "project":
        if checks.outbox != n or checks.outbox_unpublished:
            checks.problems.append(
                f"{checks.outbox} outbox rows ({checks.outbox_unpublished} unpublished), expected {n}"
            )
        # A hand-over while a task waits in the broker publishes nothing more (that task claims
        # every event committed before it starts), and no worker runs here: at least one task
        # must have reached Redis, and no event may have been left unpublished (checked above).
        if not published:
            checks.problems.append("no outbox task reached Redis")
    return checks


# --------------------------------------------------------------------------- redis


class BrokerQueue:
    """The Celery queue the bench's gunicorn publishes to: a name of its own, removed at the end."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.name = f"dlr-bench-{os.getpid()}-{secrets.token_hex(4)}"

    def keys(self) -> list[bytes]:
        found: list[bytes] = []
        for pattern in (f"{self.name}*", f"_kombu.binding*.{self.name}*"):
            found.extend(self.client.scan_iter(match=pattern, count=1000))
        return found

    def length(self) -> int:
        """Outbox events waiting in the queue. The project publishes one task per batch of
        events, so each task message is decoded and its batch counted (kombu spreads
        priorities over keys named after the queue)."""
        total = 0
        for key in self.keys():
            if self.client.type(key) != b"list":
                continue
            for item in self.client.lrange(key, 0, -1):
                args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(item)["body"]))
                total += len(args[0])
        return total

    def delete(self) -> None:
        keys = self.keys()
        if keys:
            self.client.delete(*keys)


# --------------------------------------------------------------------------- gunicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Gunicorn:
    """gunicorn on a free loopback port, in its own process group, always stopped on exit."""

    def __init__(
        self, *, settings: str, env: dict[str, str], workers: int, log_path: Path, app: str = "dlrconsole.wsgi"
    ) -> None:
        self.app = app
        self.port = free_port()
        self.log_path = log_path
        self.settings = settings
        self.env = {**env, "DJANGO_SETTINGS_MODULE": settings}
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        command = [
            sys.executable, "-m", "gunicorn", self.app,
            "--bind", f"{LOOPBACK}:{self.port}",
            # Production's settings (gthread, 4 threads, keep-alive), named rather than found in
            # the working directory; only the worker count is the bench's.
            "--config", str(ROOT / "gunicorn.conf.py"),
            "--workers", str(self.workers),
            "--timeout", "30",
            "--graceful-timeout", "5",
        ]  # fmt: skip
        log = self.log_path.open("wb")
        try:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        try:
            self.wait_healthy(deadline=time.monotonic() + 60)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_healthy(self, *, deadline: float) -> None:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                status, _ = http_get(self.port, "/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within 60 s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM to the master (it stops its workers), SIGKILL to its process group if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            # start_new_session: the master leads a group of its own, its workers are in it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class RollupPasses:
    """bench/rollup_passes.py in a process of its own (as beat's worker would be), always stopped."""

    def __init__(self, *, env: dict[str, str], log_path: Path, enabled: bool) -> None:
        self.env = {**env, "DJANGO_SETTINGS_MODULE": "dlrconsole.settings"}
        self.log_path = log_path
        self.enabled = enabled
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RollupPasses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, max_seconds: float) -> None:
        if not self.enabled:
            return
        command = [sys.executable, str(ROOT / "bench" / "rollup_passes.py"), "--max-seconds", str(max_seconds)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while '"ready"' not in self.log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the rollup passes did not start; see {self.log_path}")
            time.sleep(0.1)

    def stop(self) -> dict[str, Any]:
        """Stop the loop (it finishes its pass) and return its last line: runs, counted, busy_s."""
        if self.process is None:
            return {}
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        lines = [line for line in self.log_path.read_text().splitlines() if line.startswith('{"runs"')]
        return json.loads(lines[-1]) if lines else {}


def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def warm_up(port: int, workers: int) -> None:
    """Open every worker's database connection and import the webhook view (nothing is stored:
    a GET is refused by both the project, 401, and the reference, 405)."""
    paths = ["/healthz", f"/hooks/{SLUG}/"] * (8 * workers)

    def hit(path: str) -> None:
        http_get(port, path)

    threads = [threading.Thread(target=hit, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Hook:
    path: str
    headers: dict[str, str]
    body: bytes

    def raw(self, port: int) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {LOOPBACK}:{port}", f"Content-Length: {len(self.body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def infobip_report(round_no: int, i: int) -> dict[str, Any]:
    """A delivered report as Infobip posts it (tests/fixtures/infobip/batch.json)."""
    return {
        "bulkId": f"BULK-bench-{round_no}", "messageId": provider_message_id(round_no, i),
        "to": f"3361{i:07d}", "sentAt": "2026-11-26T11:00:00.000+0000", "doneAt": "2026-11-26T11:00:01.500+0000",
        "smsCount": 1, "price": {"pricePerMessage": 0.02, "currency": "EUR"},
        "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
                   "description": "Message delivered to handset"},
        "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error",
                  "permanent": False},
    }  # fmt: skip


def build_batches(token: str, n: int, round_no: int, batch: int, stored_share: float) -> tuple[list[Hook], list[Hook]]:
    """N reports in N/batch Infobip requests, and the requests that store `stored_share` of each
    batch's reports beforehand (the timed batches then carry them again: a provider's retry)."""
    before, timed = [], []
    headers = {"Content-Type": "application/json", "User-Agent": "dlrconsole-bench", "X-DLR-Token": token}
    stored = round(batch * stored_share)
    for start in range(0, n, batch):
        reports = [infobip_report(round_no, i) for i in range(start, start + batch)]
        if stored:
            body = json.dumps({"results": reports[:stored]}, separators=(",", ":")).encode()
            before.append(Hook(f"/hooks/{INFOBIP_SLUG}/", headers, body))
        body = json.dumps({"results": reports}, separators=(",", ":")).encode()
        timed.append(Hook(f"/hooks/{INFOBIP_SLUG}/", headers, body))
    return before, timed


def build_hooks(secret: str, n: int, round_no: int, target: str) -> list[Hook]:
    """N distinct signed receipts, one per message, signed now (the tolerance is 5 minutes)."""
    timestamp = int(time.time())
    hooks = []
    for i in range(n):
        webhook_id = f"msg_{target[:3]}{round_no}_{i:07d}"
        body = json.dumps(
            {"type": "message.status", "data": {"message_id": provider_message_id(round_no, i), "status": "delivered"}},
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "dlrconsole-bench",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, webhook_id, timestamp, body),
        }
        hooks.append(Hook(f"/hooks/{SLUG}/", headers, body))
    return hooks


# --------------------------------------------------------------------------- load generators


@dataclass
class Load:
    client: str
    duration_s: float
    completed: int
    non2xx: int
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    errors: dict[str, int]
    finished: bool = True  # every response arrived before the cap
    per_request: int = 1  # receipts in each request (--batch)

    @property
    def ok(self) -> int:
        return self.completed - self.non2xx

    @property
    def rate(self) -> float:
        """Receipts per second."""
        return self.ok * self.per_request / self.duration_s if self.duration_s else 0.0


def run_wrk(wrk: str, hooks: list[Hook], port: int, concurrency: int, max_seconds: float, workdir: Path) -> Load:
    requests_file = workdir / "requests.bin"
    with requests_file.open("wb") as out:
        for hook in hooks:
            raw = hook.raw(port)
            out.write(f"{len(raw)}\n".encode() + raw)
    command = [
        wrk, "-t1", f"-c{concurrency}", f"-d{max(1, int(max_seconds))}s", "--timeout", "60s",
        "-s", str(WRK_SCRIPT), f"http://{LOOPBACK}:{port}/", "--", str(requests_file), str(len(hooks)),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=max_seconds + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    fields = dict(item.split("=", 1) for item in line.split()[1:])
    statuses = dict(item.split(":") for item in fields["statuses"].split(",") if item)
    return Load(
        client="wrk",
        duration_s=int(fields["duration_us"]) / 1e6,
        completed=int(fields["completed"]),
        non2xx=int(fields["non2xx"]),
        p50_ms=int(fields["p50_us"]) / 1000,
        p99_ms=int(fields["p99_us"]) / 1000,
        statuses={code: int(count) for code, count in statuses.items()},
        errors={name: int(fields[name]) for name in ("connect_errors", "read_errors", "write_errors", "timeouts")},
        finished=fields["finished"] == "true",
    )


def run_python(hooks: list[Hook], port: int, concurrency: int, max_seconds: float) -> Load:
    """Threads with http.client connections; each request is sent once; stops at N or the cap."""
    lock = threading.Lock()
    next_index = iter(range(len(hooks)))
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + max_seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
        own_latencies, own_statuses, own_errors = [], Counter[str](), Counter[str]()
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    break
                hook = hooks[i]
                started = time.perf_counter()
                try:
                    conn.request("POST", hook.path, body=hook.body, headers=hook.headers)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    own_errors[type(exc).__name__] += 1
                    conn.close()
                    continue
                own_latencies.append(time.perf_counter() - started)
                own_statuses[str(response.status)] += 1
        finally:
            conn.close()
            with lock:
                latencies.extend(own_latencies)
                statuses.update(own_statuses)
                errors.update(own_errors)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 65)
    duration = time.perf_counter() - started
    latencies.sort()
    completed = sum(statuses.values())
    non2xx = sum(count for code, count in statuses.items() if not code.startswith("2"))
    return Load(
        client="python",
        duration_s=duration,
        completed=completed,
        non2xx=non2xx,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        statuses=dict(statuses),
        errors=dict(errors),
        finished=completed == len(hooks),
    )


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


# --------------------------------------------------------------------------- the run


@dataclass
class Run:
    target: str
    round_no: int
    load: Load
    checks: Checks
    loadavg: float = field(default_factory=lambda: os.getloadavg()[0])  # 1-minute, at the run's end

    @property
    def ok(self) -> bool:
        return not self.checks.problems


def one_run(
    *,
    target: str,
    round_no: int,
    args: argparse.Namespace,
    env: dict[str, str],
    db_url: str,
    connection_id: int,
    secret: str,
    queue: BrokerQueue,
    wrk: str | None,
    workdir: Path,
    infobip: tuple[int, str],
) -> Run:
    batched = bool(args.batch) and target == "project"
    n = args.reference_receipts if args.batch and not batched else args.receipts
    if batched:
        connection_id, secret = infobip
    reset_data(db_url, connection_id, n, round_no)
    queue.delete()
    log_path = workdir / f"gunicorn-{target}-{round_no}.log"
    passes = args.rollups and target == "project"
    with (
        Gunicorn(settings=TARGETS[target], env=env, workers=args.workers, log_path=log_path) as server,
        RollupPasses(env=env, log_path=workdir / f"rollups-{round_no}.log", enabled=passes) as rollups,
    ):
        warm_up(server.port, args.workers)
        concurrency = args.concurrency
        if batched:
            before, hooks = build_batches(secret, n, round_no, args.batch, args.stored_share)
            stored = run_python(before, server.port, args.workers, args.max_seconds) if before else None
            if stored is not None and stored.ok != len(before):
                raise RuntimeError(f"storing the batches' first reports failed: {stored.statuses} {stored.errors}")
            concurrency = min(concurrency, len(hooks))
        else:
            hooks = build_hooks(secret, n, round_no, target)
        rollups.start(max_seconds=args.max_seconds + 60)
        if wrk:
            load = run_wrk(wrk, hooks, server.port, concurrency, args.max_seconds, workdir)
        else:
            load = run_python(hooks, server.port, concurrency, args.max_seconds)
        if batched:
            load.per_request = args.batch
        summary = rollups.stop()
    published = queue.length() if target == "project" else None
    checks = check_database(db_url, n, target=target, published=published)
    if passes:
        with psycopg.connect(db_url, connect_timeout=10) as conn:
            row = conn.execute("SELECT count(*) FROM receipts_rolluppending").fetchone()
        checks.rollups = {**summary, "pending_left": int(row[0]) if row else None}
        if not summary.get("runs"):
            checks.problems.append(f"no rollup pass ran; see {rollups.log_path}")
    if not load.finished:
        checks.problems.append(f"the load run hit its {args.max_seconds:.0f} s cap before every response arrived")
    if load.completed != len(hooks):
        checks.problems.append(f"{load.completed} responses for {n} requests sent (errors: {load.errors})")
    if load.non2xx:
        checks.problems.append(f"{load.non2xx} non-2xx responses {load.statuses}; see {log_path}")
    return Run(target, round_no, load, checks)


def new_webhook_secret() -> str:
    """A fresh Standard Webhooks secret (`whsec_` + 32 random bytes, base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def server_env(args: argparse.Namespace, db_url: str, queue: BrokerQueue) -> dict[str, str]:
    """Production-like settings, from a clean environment (nothing inherited but the basics)."""
    base = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if name in os.environ}
    return {
        **base,
        "PYTHONPATH": str(ROOT),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DLR_SECRETS_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "ALLOWED_HOSTS": LOOPBACK,
        # gunicorn serves plain HTTP on loopback here, with no TLS proxy in front.
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": db_url,
        "REDIS_URL": args.redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue.name,
        "PUBLIC_BASE_URL": f"http://{LOOPBACK}:8000",
        # The benches' peers (send gateway, product endpoint) listen on loopback.
        "DLR_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
        # gunicorn.conf.py's threads a worker (4) unless the bench is run with it set.
        **{name: os.environ[name] for name in ("GUNICORN_THREADS",) if name in os.environ},
    }


def fmt_run(run: Run) -> str:
    load = run.load
    verdict = "checks ok" if run.ok else "CHECKS FAILED"
    return (
        f"round {run.round_no} {run.target:<9} {load.rate:8.1f} receipts/s   p50 {load.p50_ms:7.2f} ms"
        f"   p99 {load.p99_ms:7.2f} ms   non-2xx {load.non2xx}   {load.completed} in {load.duration_s:.2f} s"
        f"   load average {run.loadavg:.2f}"
        f"   [{verdict}]"
        + (
            f"   rollup passes: {rollups.get('runs')} runs, {rollups.get('counted')} messages counted in"
            f" {rollups.get('busy_s')} s, {rollups.get('pending_left')} left queued"
            if (rollups := run.checks.rollups)
            else ""
        )
    )


def summarize(runs: list[Run], args: argparse.Namespace, client: str) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for target in TARGETS:
        mine = [run.load for run in runs if run.target == target]
        summary[target] = {
            "receipts_per_s": statistics.median(load.rate for load in mine),
            "p50_ms": statistics.median(load.p50_ms for load in mine),
            "p99_ms": statistics.median(load.p99_ms for load in mine),
            "non2xx": sum(load.non2xx for load in mine),
        }
    reference = summary["reference"]["receipts_per_s"]
    summary["ratio"] = summary["project"]["receipts_per_s"] / reference if reference else 0.0
    # Each round's own ratio: its two runs are seconds apart, where the medians of a run's
    # rounds can be a minute apart while this machine's speed drifts. Shown, not judged.
    by_round = {(run.target, run.round_no): run.load.rate for run in runs}
    summary["round_ratios"] = [
        by_round[("project", r)] / by_round[("reference", r)]
        for r in sorted({run.round_no for run in runs})
        if by_round.get(("reference", r)) and ("project", r) in by_round
    ]
    if args.batch:
        summary["bar"] = BATCH_BAR
        summary["pass"] = summary["project"]["receipts_per_s"] >= BATCH_BAR
    else:
        summary["bar"] = BAR
        summary["pass"] = summary["ratio"] >= BAR
    summary["loadavg"] = [run.loadavg for run in runs]
    summary["checks_ok"] = all(run.ok for run in runs)
    summary["config"] = {
        "receipts": args.receipts, "concurrency": args.concurrency, "workers": args.workers,
        "rounds": args.rounds, "client": client, "cpus": os.cpu_count(), "rollup_passes": args.rollups,
        "batch": args.batch, "stored_share": args.stored_share,
    }  # fmt: skip
    summary["runs"] = [
        {"target": run.target, "round": run.round_no, "load": asdict(run.load), "rate": run.load.rate,
         "checks": asdict(run.checks)}
        for run in runs
    ]  # fmt: skip
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks on SIGTERM too

    wrk = shutil.which("wrk") if args.client in ("auto", "wrk") else None
    if args.client == "wrk" and not wrk:
        print("wrk is not installed (apt-get install -y wrk), or use --client python", file=sys.stderr)
        return 1
    client = "wrk (1 thread)" if wrk else f"python ({args.concurrency} threads, http.client)"
    db_url = database_url(args.pg_url, args.database)
    queue = BrokerQueue(args.redis_url)
    workdir = Path(tempfile.mkdtemp(prefix="dlr-bench-"))
    secret = new_webhook_secret()
    runs: list[Run] = []
    failed_setup = False
    print(
        f"DLR Console ingest benchmark: {args.receipts} receipts x {args.rounds} round(s), concurrency "
        f"{args.concurrency}, gunicorn gthread workers (gunicorn.conf.py) {args.workers}, client {client},"
        f" {os.cpu_count()} CPUs, "
        f"rollup passes {'beside the project' if args.rollups else 'off'}"
        + (
            f"; the project posts Infobip batches of {args.batch} ({args.stored_share:.0%} of each stored"
            " before), the reference single receipts"
            if args.batch
            else ""
        )
        + f"; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    try:
        queue.client.ping()
        create_database(args.pg_url, args.database)
        env = server_env(args, db_url, queue)
        manage({**env, "DJANGO_SETTINGS_MODULE": "dlrconsole.settings"}, "migrate", "--noinput", "-v", "0")
        manage(
            {**env, "DJANGO_SETTINGS_MODULE": "dlrconsole.settings"},
            "create_connection", SLUG, "--provider", "standard-webhooks", f"--secret={secret}",
        )  # fmt: skip
        token = secrets.token_urlsafe(24)
        manage(
            {**env, "DJANGO_SETTINGS_MODULE": "dlrconsole.settings"},
            "create_connection", INFOBIP_SLUG, "--provider", "infobip", f"--secret={token}",
        )  # fmt: skip
        with psycopg.connect(db_url, connect_timeout=10) as conn:
            ids = dict(conn.execute("SELECT slug, id FROM receipts_connection").fetchall())
        connection_id = int(ids[SLUG])
        infobip = (int(ids[INFOBIP_SLUG]), token)
        for round_no in range(1, args.rounds + 1):
            for target in TARGETS:
                run = one_run(
                    target=target, round_no=round_no, args=args, env=env, db_url=db_url,
                    connection_id=connection_id, secret=secret, queue=queue, wrk=wrk, workdir=workdir,
                    infobip=infobip,
                )  # fmt: skip
                runs.append(run)
                print(fmt_run(run), flush=True)
                for problem in run.checks.problems:
                    print(f"    check failed: {problem}", flush=True)
    except (Exception, KeyboardInterrupt) as exc:
        failed_setup = True
        print(f"benchmark aborted: {exc}", file=sys.stderr)
        for log in sorted(workdir.glob("gunicorn-*.log")):
            print(f"--- {log.name} (last lines)\n" + "\n".join(log.read_text().splitlines()[-20:]), file=sys.stderr)
    finally:
        keep_logs = failed_setup or not all(run.ok for run in runs)
        cleanup(args, queue, workdir, keep_logs=keep_logs)

    if failed_setup or len(runs) != 2 * args.rounds:
        return 1
    summary = summarize(runs, args, client)
    project, reference = summary["project"], summary["reference"]
    print()
    print(f"{'':10}{'receipts/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>9}   (median of {args.rounds} round(s))")
    for name, row in (("project", project), ("reference", reference)):
        print(f"{name:10}{row['receipts_per_s']:12.1f}{row['p50_ms']:10.2f}{row['p99_ms']:10.2f}{row['non2xx']:9d}")
    verdict = "PASS" if summary["pass"] else "FAIL"
    if args.batch:
        print(
            f"project batches of {args.batch}: {project['receipts_per_s']:.0f} receipts/s  ->  {verdict}"
            f" (bar >= {BATCH_BAR}); ratio to the single-receipt reference = {summary['ratio']:.2f}"
        )
    else:
        print(f"ratio project/reference = {summary['ratio']:.3f}  ->  {verdict} (bar >= {BAR})")
        if len(summary["round_ratios"]) > 1:
            ratios = summary["round_ratios"]
            print(
                f"each round's own ratio: {', '.join(f'{r:.3f}' for r in ratios)}"
                f" (median {statistics.median(ratios):.3f}; not the verdict)"
            )
    print(f"load average (1 min) at each run's end: {', '.join(f'{x:.2f}' for x in summary['loadavg'])}")
    last = next(run for run in reversed(runs) if run.target == "project").checks
    print(
        f"checks (last project run): {last.receipts}/{args.receipts} receipts stored, {last.delivered}/{args.receipts}"
        f" messages delivered, {last.outbox} outbox rows, {last.redis_published} named in the tasks waiting in Redis"
        f"  ->  {'ok' if summary['checks_ok'] else 'FAILED'}"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if not summary["checks_ok"]:
        return 1
    if args.strict and not summary["pass"]:
        return 2
    return 0


def cleanup(args: argparse.Namespace, queue: BrokerQueue, workdir: Path, *, keep_logs: bool) -> None:
    for step in (queue.delete, lambda: None if args.keep else drop_database(args.pg_url, args.database)):
        try:
            step()
        except Exception as exc:
            print(f"cleanup: {exc}", file=sys.stderr)
    if keep_logs and any(workdir.glob("gunicorn-*.log")):
        (workdir / "requests.bin").unlink(missing_ok=True)
        print(f"gunicorn logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.keep:
        print(f"kept database {args.database}: {database_url(args.pg_url, args.database)}")


if __name__ == "__main__":
    sys.exit(main())
