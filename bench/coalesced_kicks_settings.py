"""A prototype of a fix, for bench/decision_latency.py only: the worker with database connections
kept between tasks (bench/db_reuse_settings.py) and at most one queued kick per kind.

    .venv/bin/python bench/decision_latency.py --worker-settings bench.coalesced_kicks_settings

The project kicks `deliver_feed` once per published feed event and `run_due_attempts` once per
attempt due at once; most kicks find nothing left to do, and each is a whole task in the queue
the decisions wait in. Here, in each pool process, a kick is published only if no kick of its kind
is already queued (a Redis key, SET NX, cleared by the task as it starts, with a 30 s expiry in
case a task is lost), and the task claims again while it finds a full batch (at most 20 s), since
fewer kicks no longer cover a backlog. It patches the project's functions at run time: a way to
measure the effect, not the way to write the fix.
"""

import time
from collections.abc import Callable
from typing import Any

from celery.signals import worker_process_init

from bench.db_reuse_settings import *  # noqa: F403

BUDGET_SECONDS = 20


@worker_process_init.connect
def _coalesce_kicks(**kwargs: Any) -> None:
    import redis
    from django.conf import settings

    import retries.decisions as decisions
    import retries.feed_tasks as feed_tasks
    import retries.runner_kick as runner_kick
    import retries.tasks as tasks

    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = f"{settings.CELERY_TASK_DEFAULT_QUEUE}:kick"

    def once(key: str, kick: Callable[[], None]) -> Callable[[], None]:
        def kick_once() -> None:
            if client.set(key, 1, nx=True, ex=30):
                kick()

        return kick_once

    def until_drained(key: str, run: Callable[..., int], batch: int, kick: Callable[[], None]) -> Callable[..., int]:
        def run_until_drained(*args: Any, **kw: Any) -> int:
            client.delete(key)  # a kick from now on queues another run
            started, total = time.monotonic(), 0
            while True:
                done = run(*args, **kw)
                total += done
                if done < batch:
                    return total
                if time.monotonic() - started > BUDGET_SECONDS:
                    kick()  # more is due: another run, after what waits in the queue
                    return total

        return run_until_drained

    kick_feed, kick_runner = runner_kick.kick_feed_deliverer, decisions.kick_attempt_runner
    runner_kick.kick_feed_deliverer = once(f"{prefix}:feed", kick_feed)
    decisions.kick_attempt_runner = once(f"{prefix}:runner", kick_runner)
    feed_tasks.feed_deliver_due = until_drained(f"{prefix}:feed", feed_tasks.feed_deliver_due, 100, kick_feed)
    tasks.attempts_run_due = until_drained(f"{prefix}:runner", tasks.attempts_run_due, 50, kick_runner)
