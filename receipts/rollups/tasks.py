"""Beat's entry points for the rollups: thin, safe to run twice at once (the pass lock)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from receipts.rollups import maintain, route_timing


@shared_task(ignore_result=True)
def roll_up() -> int:
    return maintain.roll_up_all(seconds=settings.DLR_ROLLUP_PASS_SECONDS)


@shared_task(ignore_result=True)
def prune_rollups() -> dict[str, int]:
    return maintain.prune()


@shared_task(ignore_result=True)
def learn_route_timings() -> int:
    return route_timing.route_timings_learn()
