"""What each route (connection and country) has lately taken to deliver: the 99th percentile of
its time to delivery over the last LOOKBACK, read from the rollups' histograms and kept in
receipts.flows.RouteTiming, where an adaptive receipt SLA reads it (receipts/sla.py).

A route with fewer than MIN_DELIVERED deliveries in the window has no figure (a p99 of a
handful says nothing) and its flows wait their full SLA; a route that stopped sending keeps
its last figure until it has none in the window, then loses it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from receipts.flows.models import RouteTiming
from receipts.flows.selectors import clear_caches
from receipts.rollups.figures import TTD_COLUMNS, percentile
from receipts.rollups.maintain import bucket_start
from receipts.rollups.models import Grain
from receipts.rollups.selectors import STEPS, Period, rollup_figures

LOOKBACK = timedelta(hours=24)
MIN_DELIVERED = 50
P99 = 0.99


def route_timings_learn(*, now: datetime | None = None) -> int:
    """Recompute every route's p99 from the last LOOKBACK of hour cells; how many routes have one."""
    now = now or timezone.now()
    until = bucket_start(now, Grain.HOUR) + STEPS[Grain.HOUR]
    period = Period(until - LOOKBACK, until, Grain.HOUR)
    figures = rollup_figures(period=period, group_by=("connection", "country"), columns=TTD_COLUMNS, reasons=False)
    learned = []
    for route in figures:
        counts = [route.counts[column] for column in TTD_COLUMNS]
        p99 = percentile(counts, P99) if sum(counts) >= MIN_DELIVERED else None
        if p99 is not None:
            learned.append(
                RouteTiming(
                    connection_id=route.group["connection"], country=route.group["country"], p99_seconds=p99,
                    delivered=sum(counts), computed_at=now,
                )
            )  # fmt: skip
    with transaction.atomic():
        RouteTiming.objects.bulk_create(
            learned,
            update_conflicts=True,
            unique_fields=["connection", "country"],
            update_fields=["p99_seconds", "delivered", "computed_at"],
        )
        RouteTiming.objects.filter(computed_at__lt=now).delete()
    clear_caches()  # bulk_create sends no signal: this process reads the new figures at once
    return len(learned)
