"""A real Celery worker process for tests, consuming the test queue from the real Redis and
writing to the test database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import redis
from django.conf import settings
from django.db import connection


def database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def celery_worker(
    *,
    ready_timeout: float = 60,
    beat: bool = False,
    redis_url: str = "",
    env: dict[str, str] | None = None,
    queues: list[str] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """Start `celery worker` on every test queue (only `queues` if given); stop it (TERM, then
    KILL) on exit. With `beat`, its embedded beat runs the periodic tasks (every second
    under the test settings)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dlrconsole.settings_test",
        "DATABASE_URL": database_url(),  # the test database pytest-django created
        "REDIS_URL": redis_url or os.environ["REDIS_URL"],
        **(env or {}),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "dlrconsole", "worker", "--pool", "solo", "--concurrency", "1",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--loglevel", "INFO",
    ]  # fmt: skip
    # Without -Q a worker consumes every declared queue (dlrconsole/queues.py), as in production.
    command += ["-Q", ",".join(queues)] if queues else []
    schedule_dir = tempfile.TemporaryDirectory(prefix="beat-")
    if beat:
        command += ["--beat", "--schedule", os.path.join(schedule_dir.name, "schedule")]
    # Its own process group: the embedded beat is a child process, and stopping (or killing) the
    # worker must take it along, or it goes on publishing into the next test's queue.
    process = subprocess.Popen(
        command, env=env, cwd=settings.BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if " ready." in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    process.output_lines = lines  # type: ignore[attr-defined]  # what it wrote so far, for tests that read it
    try:
        if not ready.wait(ready_timeout):
            raise RuntimeError("celery worker did not start:\n" + "".join(lines[-40:]))
        yield process
    finally:
        _signal_group(process, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        _signal_group(process, signal.SIGKILL)  # whatever is left of the group, beat included
        process.wait(timeout=10)
        reader.join(timeout=5)
        schedule_dir.cleanup()


def kill_worker(process: subprocess.Popen[str]) -> None:
    """SIGKILL the worker and its children at once, as when its machine dies."""
    _signal_group(process, signal.SIGKILL)
    process.wait(timeout=10)


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    with suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signum)


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until true or `timeout` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, that the test can stop and
    start again (the shared one serves other tests)."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH: the broker-outage test starts its own")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        if not wait_until(lambda: _pings(client), timeout=10):
            raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@contextmanager
def broker(url: str) -> Iterator[None]:
    """Point this process's Celery app (the outbox publisher) at `url` for the block."""
    from dlrconsole.celery import app

    def use(target: str) -> None:
        app.conf.broker_url = target
        # Forget the app's pools (as Celery does after a fork) so the next publish uses `target`;
        # kombu keeps one pool per URL, so switching back finds the original one.
        app._pool = None
        app.amqp._producer_pool = None

    original = app.conf.broker_url
    use(url)
    try:
        yield
    finally:
        use(original)


@contextmanager
def hanging_broker() -> Iterator[str]:
    """A loopback port that accepts connections and never answers: a broker that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


def queued_task_names(redis_client: redis.Redis, queues: list[str] | None = None) -> list[str]:
    """The names of the tasks waiting in the real Redis queues (all the settings declare, or
    `queues`), queue by queue."""
    names = queues if queues is not None else [queue.name for queue in settings.CELERY_TASK_QUEUES]
    return [json.loads(raw)["headers"]["task"] for name in names for raw in redis_client.lrange(name, 0, -1)]
