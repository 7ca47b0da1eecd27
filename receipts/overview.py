"""The console overview's figures: receipts per minute, delivery rate, time to delivery, top
failure reasons, by connection and by country, over a window of recent submissions.

Read live from messages and receipts (indexes on Message.submitted_at and Receipt.received_at);
rollups replace these reads when the monitoring issue lands.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from django.core.exceptions import EmptyResultSet
from django.db import connection as db_connection
from django.db.models import (
    Aggregate,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
)
from django.db.models.functions import Extract, Substr, TruncMinute
from django.utils import timezone

from receipts.models import Connection, Message, Receipt
from receipts.reasons import REASONS
from receipts.statuses import FAILURE_STATUSES, Status

WINDOWS: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_WINDOW = "24h"
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


def seconds_between(start: str, end: str) -> Any:
    """`end - start` in seconds, computed by the database. On SQLite (the demo) through julianday(),
    which is native, where Django's own datetime arithmetic calls a Python function per row."""
    if db_connection.vendor == "sqlite":
        days = Func(F(end), function="julianday", output_field=FloatField()) - Func(
            F(start), function="julianday", output_field=FloatField()
        )
        return ExpressionWrapper(days * 86400.0, output_field=FloatField())
    interval = ExpressionWrapper(F(end) - F(start), output_field=DurationField())
    return Extract(interval, "epoch", output_field=FloatField())


def delivery_times_sql(delivered: QuerySet[Message]) -> tuple[timedelta | None, timedelta | None]:
    duration = F("final_at") - F("submitted_at")
    figures = delivered.aggregate(p50=PercentileCont(duration, 0.5), p95=PercentileCont(duration, 0.95))
    return figures["p50"], figures["p95"]


# Both neighbours of each percentile's rank, read in one sort by a window function. Ranks are
# computed with integer division, which truncates alike on SQLite and PostgreSQL.
RANKED_SQL = """
SELECT r, n, seconds FROM (
    SELECT seconds, ROW_NUMBER() OVER (ORDER BY seconds) - 1 AS r, COUNT(*) OVER () AS n FROM ({inner}) AS d
) AS ranked
WHERE r IN ((n - 1) / 2, (n - 1) / 2 + 1, (95 * (n - 1)) / 100, (95 * (n - 1)) / 100 + 1)
"""


def delivery_times_ranked(delivered: QuerySet[Message]) -> tuple[timedelta | None, timedelta | None]:
    """percentile_cont's interpolation between the two values ranked around each percentile,
    for databases without percentile_cont (SQLite): one query, whatever the number of rows."""
    try:
        inner, params = (
            delivered.annotate(seconds=seconds_between("submitted_at", "final_at"))
            .values_list("seconds")
            .order_by()
            .query.sql_with_params()
        )
    except EmptyResultSet:  # a queryset that cannot match anything
        return None, None
    with db_connection.cursor() as cursor:
        cursor.execute(RANKED_SQL.format(inner=inner), params)
        rows = cursor.fetchall()
    if not rows:
        return None, None
    count = rows[0][1]
    at_rank = {rank: float(seconds) for rank, _, seconds in rows}
    figures = []
    for percent in (50, 95):
        low, remainder = divmod(percent * (count - 1), 100)
        high = low + 1 if remainder else low
        value = at_rank[low] + (at_rank[high] - at_rank[low]) * remainder / 100
        figures.append(timedelta(seconds=value))
    return figures[0], figures[1]


def delivery_times(messages: QuerySet[Message]) -> tuple[timedelta | None, timedelta | None]:
    """Time to delivery (final_at - submitted_at of delivered messages), p50 and p95."""
    delivered = messages.filter(DELIVERED, final_at__isnull=False)
    if db_connection.vendor == "postgresql":
        return delivery_times_sql(delivered)
    return delivery_times_ranked(delivered)


def _minute_of(field: str) -> Any:
    if db_connection.vendor == "sqlite":
        # Stored as UTC text 'YYYY-MM-DD HH:MM:SS.ffffff': its first 16 characters are the minute.
        # TruncMinute there is a Python function per row.
        return Substr(field, 1, 16, output_field=CharField())
    return TruncMinute(field)


def _as_minute(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.strptime(value, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def receipts_per_minute(*, now: datetime, minutes: int = 60) -> list[MinuteCount]:
    """Receipts received in each of the last `minutes` whole minutes, oldest first, zeros included."""
    current = now.replace(second=0, microsecond=0)
    start = current - timedelta(minutes=minutes - 1)
    counts = {
        _as_minute(row["minute"]): row["receipts"]
        for row in Receipt.objects.filter(received_at__gte=start, received_at__lt=current + timedelta(minutes=1))
        .annotate(minute=_minute_of("received_at"))
        .values("minute")
        .annotate(receipts=Count("id"))
        .order_by()
    }
    return [
        MinuteCount(minute, counts.get(minute, 0))
        for minute in (start + timedelta(minutes=offset) for offset in range(minutes))
    ]


def _tally(key: str, groups: list[dict[str, Any]]) -> Tally:
    return Tally(
        key,
        total=sum(g["n"] for g in groups),
        delivered=sum(g["n"] for g in groups if g["status"] == Status.DELIVERED),
        failed=sum(g["n"] for g in groups if g["status"] in FAILURE_STATUSES),
    )


def _tallies_by(groups: list[dict[str, Any]], key: Callable[[dict[str, Any]], str], limit: int) -> list[Tally]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for group in groups:
        grouped[key(group)].append(group)
    tallies = [_tally(name, members) for name, members in grouped.items()]
    return sorted(tallies, key=lambda t: (-t.total, t.key))[:limit]


def _top_reasons(groups: list[dict[str, Any]], limit: int = 5) -> list[ReasonCount]:
    counts: Counter[str] = Counter()
    for group in groups:
        if group["status"] in FAILURE_STATUSES:
            counts[group["reason"] or "unknown"] += group["n"]
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [
        ReasonCount(reason, str(REASONS[reason].explanation) if reason in REASONS else "", n) for reason, n in ranked
    ]


def overview_summary(*, window: str = DEFAULT_WINDOW, now: datetime | None = None, limit: int = 10) -> Overview:
    """The overview over messages submitted in the last `window` (a key of WINDOWS)."""
    now = now or timezone.now()
    since = now - WINDOWS[window]
    messages = Message.objects.filter(submitted_at__gte=since, submitted_at__lte=now)
    # One scan of the window's messages, grouped finely enough (a few hundred groups) that every
    # figure but the percentiles adds up from it.
    rows = messages.values("connection_id", "country", "status", "reason").annotate(n=Count("id")).order_by()
    groups = cast(list[dict[str, Any]], list(rows))
    slugs = dict(Connection.objects.filter(pk__in={g["connection_id"] for g in groups}).values_list("pk", "slug"))
    p50, p95 = delivery_times(messages)
    return Overview(
        window=window,
        since=since,
        until=now,
        totals=_tally("all", groups),
        p50=p50,
        p95=p95,
        per_minute=receipts_per_minute(now=now),
        top_reasons=_top_reasons(groups),
        by_connection=_tallies_by(groups, lambda g: slugs.get(g["connection_id"], "—"), limit),
        by_country=_tallies_by(groups, lambda g: g["country"] or "—", limit),
    )
