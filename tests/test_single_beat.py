"""However many beats are started, one sends the periodic tasks; another takes over when it stops
(dlrconsole/beat.py). Real schedulers ticking against the real Redis broker and database."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from dlrconsole.beat import BeatLock, SingleBeatScheduler
from dlrconsole.celery import app
from tests.worker import wait_until

# The scheduler closes the database connection between ticks, as beat does.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LOCK_SECONDS = 6


def queued(redis_client) -> int:
    return sum(redis_client.llen(queue.name) for queue in settings.CELERY_TASK_QUEUES)


def empty_queues(redis_client) -> None:
    redis_client.delete(*(queue.name for queue in settings.CELERY_TASK_QUEUES))


def tick_for(scheduler: SingleBeatScheduler, seconds: float) -> None:
    """Tick as beat's loop does, without its sleeps, for a bounded time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        scheduler.tick()
        time.sleep(0.05)


@pytest.fixture
def start_beat(settings, redis_client):
    settings.DLR_BEAT_LOCK_SECONDS = LOCK_SECONDS
    started: list[SingleBeatScheduler] = []

    def start() -> SingleBeatScheduler:
        started.append(SingleBeatScheduler(app=app))
        return started[-1]

    yield start
    for scheduler in started:
        scheduler.close()


def test_a_second_beat_sends_nothing_while_the_first_one_runs(start_beat, redis_client):
    first, second = start_beat(), start_beat()
    first.tick()
    assert first.lock.held
    time.sleep(1.2)  # the test schedule's tasks (every second) are now due
    empty_queues(redis_client)
    tick_for(second, 1.0)
    assert not second.lock.held
    assert queued(redis_client) == 0
    tick_for(first, 0.5)
    assert queued(redis_client) > 0


def test_the_standby_beat_takes_over_at_once_when_the_first_one_stops(start_beat, redis_client):
    first, second = start_beat(), start_beat()
    first.tick()
    second.tick()
    first.close()  # a clean stop releases the lock
    time.sleep(1.2)
    empty_queues(redis_client)
    tick_for(second, 0.5)
    assert second.lock.held
    assert queued(redis_client) > 0


def test_the_standby_beat_takes_over_when_the_first_one_dies_without_a_word(start_beat, redis_client):
    first, second = start_beat(), start_beat()
    first.tick()  # then never again: its process was killed
    assert wait_until(lambda: second.tick() is not None and second.lock.held, timeout=3 * LOCK_SECONDS)
    # The first one, were it only paused, finds its lock gone and stays idle.
    first.tick()
    assert not first.lock.held


@pytest.mark.django_db
def test_a_beat_that_cannot_reach_redis_sends_nothing():
    lock = BeatLock("redis://127.0.0.1:9/0", seconds=LOCK_SECONDS)  # nothing listens on port 9
    assert lock.hold() is False
