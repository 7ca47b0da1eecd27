"""A real Celery worker process for tests, consuming the test queue from the real Redis and
writing to the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection


def _database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def celery_worker(*, ready_timeout: float = 60) -> Iterator[subprocess.Popen[str]]:
    """Start `celery worker` on the test queue; stop it (TERM, then KILL) on exit."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dlrconsole.settings_test",
        "DATABASE_URL": _database_url(),  # the test database pytest-django created
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    command = [
        sys.executable, "-m", "celery", "-A", "dlrconsole", "worker", "--pool", "solo", "--concurrency", "1",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "--loglevel", "INFO",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, cwd=settings.BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
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
    try:
        if not ready.wait(ready_timeout):
            raise RuntimeError("celery worker did not start:\n" + "".join(lines[-40:]))
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        reader.join(timeout=5)


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until true or `timeout` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
