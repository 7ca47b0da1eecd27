"""The periodic tasks production's beat runs, kept in the database by django-celery-beat."""

from __future__ import annotations

import importlib

import pytest
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from dlrconsole.celery import app
from dlrconsole.settings import CELERY_BEAT_SCHEDULE, CELERY_BEAT_SCHEDULER

pytestmark = pytest.mark.django_db


def test_production_beat_uses_the_database_scheduler():
    assert CELERY_BEAT_SCHEDULER == "dlrconsole.beat:SingleBeatScheduler"
    module, _, name = CELERY_BEAT_SCHEDULER.partition(":")
    assert issubclass(getattr(importlib.import_module(module), name), DatabaseScheduler)


@pytest.mark.django_db(transaction=True)  # the scheduler closes the connection, as beat does
def test_the_database_scheduler_installs_every_periodic_task_with_its_interval(settings):
    app.conf.beat_schedule = CELERY_BEAT_SCHEDULE  # production's intervals, not the tests' 1 s
    try:
        DatabaseScheduler(app=app)
    finally:
        app.conf.beat_schedule = settings.CELERY_BEAT_SCHEDULE
    installed = {
        task.name: (task.task, task.interval.every) for task in PeriodicTask.objects.select_related("interval")
        if task.interval is not None
    }  # fmt: skip
    for name, entry in CELERY_BEAT_SCHEDULE.items():
        assert installed[name] == (entry["task"], int(entry["schedule"])), name
    # Every task named there exists, so beat never sends something no worker knows.
    app.loader.import_default_modules()
    assert {entry["task"] for entry in CELERY_BEAT_SCHEDULE.values()} <= set(app.tasks)
