"""The console overview's figures: receipts per minute, delivery rate, time to delivery, top
failure reasons, by connection and by country, over a window of recent submissions.

Read live from messages and receipts (indexes on Message.submitted_at and Receipt.received_at);
rollups replace these reads when the monitoring issue lands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection as db_connection
from django.db.models import Aggregate, Count, DurationField, F, Q, QuerySet
from django.db.models.functions import TruncMinute
from django.utils import timezone

from receipts.models import Message, Receipt
from receipts.reasons import REASONS
from receipts.statuses import FAILURE_STATUSES, Status

WINDOWS: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_WINDOW = "24h"
FAILED = Q(status__in=FAILURE_STATUSES)
DELIVERED = Q(status=Status.DELIVERED)


@dataclass(frozen=True)
class Tally:
    """Messages of one group: how many, delivered, failed; the rest are still in flight."""

    key: str
    total: int
    delivered: int
    failed: int

    @property
    def delivery_rate(self) -> float | None:
        """Delivered among messages with a final status; in-flight ones are not counted yet."""
        final = self.delivered + self.failed
        return self.delivered / final if final else None

    @property
    def pending(self) -> int:
        return self.total - self.delivered - self.failed


@dataclass(frozen=True)
class MinuteCount:
    minute: datetime
    receipts: int


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    explanation: str
    messages: int


@dataclass(frozen=True)
class Overview:
    window: str
    since: datetime
    until: datetime
    totals: Tally
    p50: timedelta | None
    p95: timedelta | None
    per_minute: list[MinuteCount]
    top_reasons: list[ReasonCount]
    by_connection: list[Tally]
    by_country: list[Tally]

    @property
    def per_minute_peak(self) -> int:
        return max((bucket.receipts for bucket in self.per_minute), default=0)


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile, which orders intervals directly."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def __init__(self, expression: Any, fraction: float) -> None:
        super().__init__(expression, fraction=f"{float(fraction):.6f}")


def percentile_cont(ordered: list[timedelta], fraction: float) -> timedelta | None:
    """The same interpolation as PostgreSQL's percentile_cont, for SQLite (the demo)."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def delivery_times_sql(delivered: QuerySet[Message]) -> tuple[timedelta | None, timedelta | None]:
    duration = F("final_at") - F("submitted_at")
    figures = delivered.aggregate(p50=PercentileCont(duration, 0.5), p95=PercentileCont(duration, 0.95))
    return figures["p50"], figures["p95"]


def delivery_times_python(delivered: QuerySet[Message]) -> tuple[timedelta | None, timedelta | None]:
    rows = delivered.filter(final_at__isnull=False).values_list("submitted_at", "final_at")
    ordered = sorted(final - submitted for submitted, final in rows if final is not None)
    return percentile_cont(ordered, 0.5), percentile_cont(ordered, 0.95)


def delivery_times(messages: QuerySet[Message]) -> tuple[timedelta | None, timedelta | None]:
    """Time to delivery (final_at - submitted_at of delivered messages), p50 and p95."""
    delivered = messages.filter(DELIVERED, final_at__isnull=False)
    if db_connection.vendor == "postgresql":
        return delivery_times_sql(delivered)
    return delivery_times_python(delivered)


def receipts_per_minute(*, now: datetime, minutes: int = 60) -> list[MinuteCount]:
    """Receipts received in each of the last `minutes` whole minutes, oldest first, zeros included."""
    current = now.replace(second=0, microsecond=0)
    start = current - timedelta(minutes=minutes - 1)
    counts = {
        row["minute"]: row["receipts"]
        for row in Receipt.objects.filter(received_at__gte=start, received_at__lt=current + timedelta(minutes=1))
        .annotate(minute=TruncMinute("received_at"))
        .values("minute")
        .annotate(receipts=Count("id"))
        .order_by()
    }
    return [
        MinuteCount(minute, counts.get(minute, 0))
        for minute in (start + timedelta(minutes=offset) for offset in range(minutes))
    ]


def _tallies(messages: QuerySet[Message], field: str, limit: int) -> list[Tally]:
    rows = (
        messages.values(field)
        .annotate(total=Count("id"), delivered=Count("id", filter=DELIVERED), failed=Count("id", filter=FAILED))
        .order_by("-total", field)[:limit]
    )
    return [Tally(row[field] or "—", row["total"], row["delivered"], row["failed"]) for row in rows]


def top_failure_reasons(messages: QuerySet[Message], *, limit: int = 5) -> list[ReasonCount]:
    rows = messages.filter(FAILED).values("reason").annotate(n=Count("id")).order_by("-n", "reason")[:limit]
    return [
        ReasonCount(row["reason"] or "unknown", str(REASONS[row["reason"]].explanation) if row["reason"] in REASONS
                    else "", row["n"])
        for row in rows
    ]  # fmt: skip


def overview_summary(*, window: str = DEFAULT_WINDOW, now: datetime | None = None, limit: int = 10) -> Overview:
    """The overview over messages submitted in the last `window` (a key of WINDOWS)."""
    now = now or timezone.now()
    since = now - WINDOWS[window]
    messages = Message.objects.filter(submitted_at__gte=since, submitted_at__lte=now)
    totals = messages.aggregate(
        total=Count("id"), delivered=Count("id", filter=DELIVERED), failed=Count("id", filter=FAILED)
    )
    p50, p95 = delivery_times(messages)
    return Overview(
        window=window,
        since=since,
        until=now,
        totals=Tally("all", totals["total"], totals["delivered"], totals["failed"]),
        p50=p50,
        p95=p95,
        per_minute=receipts_per_minute(now=now),
        top_reasons=top_failure_reasons(messages),
        by_connection=_tallies(messages, "connection__slug", limit),
        by_country=_tallies(messages, "country", limit),
    )
