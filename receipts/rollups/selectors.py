"""Reading the rollups: the figures of a period, per group, its trend and the period before.

A window is read from one grain (1 h from minute buckets, 24 h and 7 d from hours, 30 d from
days) and aligned to that grain's bucket starts, current bucket included: "the last 24 h" is
the 24 whole UTC hours ending with the current one. Every figure is a sum over the cells of the
window (GROUP BY in the database over at most a few thousand rows), never a scan of messages,
so a page costs the same at ten thousand or ten million messages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import pgettext_lazy
from django_stubs_ext import StrOrPromise

from receipts.rollups.figures import COUNT_COLUMNS, STATUS_COLUMNS, TTD_COLUMNS, TTFR_COLUMNS, percentile
from receipts.rollups.maintain import bucket_start, kept_since
from receipts.rollups.models import LEVEL_DIMENSIONS, CoarseRollup, CoarseRollupReason, Grain, Rollup, RollupReason
from receipts.statuses import FAILURE_STATUSES, FINAL_STATUSES, Status

STEPS: dict[str, timedelta] = {
    Grain.MINUTE: timedelta(minutes=1),
    Grain.HOUR: timedelta(hours=1),
    Grain.DAY: timedelta(days=1),
}
# The console's windows: their length and the grain they are read from (about 24 to 168 points).
WINDOWS: dict[str, tuple[timedelta, str]] = {
    "1h": (timedelta(hours=1), Grain.MINUTE),
    "24h": (timedelta(hours=24), Grain.HOUR),
    "7d": (timedelta(days=7), Grain.HOUR),
    "30d": (timedelta(days=30), Grain.DAY),
}
DEFAULT_WINDOW = "24h"
# What figures may be grouped by, and the rollup column each reads.
GROUP_COLUMNS: dict[str, str] = {
    "connection": "connection_id",
    "country": "country",
    "network": "network",
    "flow": "flow",
}
DELIVERED_COLUMN = STATUS_COLUMNS[Status.DELIVERED]
FAILED_COLUMNS: tuple[str, ...] = tuple(STATUS_COLUMNS[s] for s in STATUS_COLUMNS if s in FAILURE_STATUSES)
FINAL_COLUMNS: tuple[str, ...] = tuple(STATUS_COLUMNS[s] for s in STATUS_COLUMNS if s in FINAL_STATUSES)


# A bucket's size in words for the pages; Grain's labels are codes the API answers with.
GRAIN_NAMES: dict[str, StrOrPromise] = {
    Grain.MINUTE: pgettext_lazy("rollup bucket", "minute"),
    Grain.HOUR: pgettext_lazy("rollup bucket", "hour"),
    Grain.DAY: pgettext_lazy("rollup bucket", "day"),
}


@dataclass(frozen=True)
class Period:
    """[since, until) read from `grain` buckets; both bounds are bucket starts."""

    since: datetime
    until: datetime
    grain: str

    @property
    def length(self) -> timedelta:
        return self.until - self.since

    @property
    def previous(self) -> Period:
        """The period of equal length just before, for "compared with the previous period"."""
        return Period(self.since - self.length, self.since, self.grain)

    @property
    def grain_name(self) -> str:
        """The bucket size in the reader's language ("hour", "heure"); the API keeps the codes."""
        return str(GRAIN_NAMES.get(self.grain, self.grain))

    def buckets(self) -> list[datetime]:
        step = STEPS[self.grain]
        return [self.since + step * n for n in range(self.length // step)]

    def bucket_end(self, bucket: datetime) -> datetime:
        return bucket + STEPS[self.grain]

    def complete_since(self, *, now: datetime | None = None) -> bool:
        """Whether the grain still keeps every bucket of the period (minutes 48 h, hours 90 days)."""
        oldest = kept_since(self.grain, now or timezone.now())
        return oldest is None or self.since >= oldest


def window_period(window: str, *, now: datetime | None = None) -> Period:
    """The period of a console window (a key of WINDOWS), ending with the current bucket."""
    length, grain = WINDOWS[window]
    until = bucket_start(now or timezone.now(), grain) + STEPS[grain]
    return Period(until - length, until, grain)


def period_between(start: datetime, end: datetime, grain: str) -> Period:
    """[start, end) widened to whole buckets of `grain`."""
    since = bucket_start(start, grain)
    until = bucket_start(end, grain)
    if until < end:
        until += STEPS[grain]
    return Period(since, max(until, since + STEPS[grain]), grain)


@dataclass(frozen=True)
class Scope:
    """Which cells count: None is any value, "" the cells where the provider told us none."""

    connection_id: int | None = None
    country: str | None = None
    network: str | None = None
    flow: str | None = None

    def columns(self) -> set[str]:
        """The rollup columns the scope narrows."""
        return {column for column, value in self._values().items() if value is not None}

    def _values(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "country": self.country,
            "network": self.network,
            "flow": self.flow,
        }

    def condition(self) -> Q:
        return Q(**{column: value for column, value in self._values().items() if value is not None})


@dataclass(frozen=True)
class ReasonFigure:
    reason: str
    error_class: str
    messages: int


@dataclass
class Figures:
    """The figures of one group (or of everything, `group` empty) over a period."""

    group: dict[str, Any]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_COLUMNS, 0))
    # Per currency, never added across currencies: cost, and the delivered messages it bought.
    costs: dict[str, Decimal] = field(default_factory=dict)
    delivered_by_currency: dict[str, int] = field(default_factory=dict)
    reasons: list[ReasonFigure] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return self.counts["messages"]

    @property
    def delivered(self) -> int:
        return self.counts[DELIVERED_COLUMN]

    @property
    def failed(self) -> int:
        return sum(self.counts[column] for column in FAILED_COLUMNS)

    @property
    def final(self) -> int:
        return sum(self.counts[column] for column in FINAL_COLUMNS)

    @property
    def pending(self) -> int:
        """Without a final status yet (queued, accepted, sent, unknown)."""
        return self.messages - self.final

    @property
    def delivery_rate(self) -> float | None:
        """Delivered among messages with a final status; those still in flight do not count yet."""
        return self.delivered / self.final if self.final else None

    @property
    def missing(self) -> int:
        return self.counts["missing"]

    @property
    def missing_rate(self) -> float | None:
        return self.missing / self.messages if self.messages else None

    @property
    def resends(self) -> int:
        return self.counts["resends"]

    @property
    def fallbacks(self) -> int:
        return self.counts["fallbacks"]

    def statuses(self) -> dict[str, int]:
        return {status: self.counts[column] for status, column in STATUS_COLUMNS.items()}

    def _percentile(self, columns: Sequence[str], fraction: float) -> float | None:
        return percentile([self.counts[column] for column in columns], fraction)

    @property
    def ttd_p50(self) -> float | None:
        """Time to delivery, median, in seconds (from the histogram: within its bucket's width)."""
        return self._percentile(TTD_COLUMNS, 0.5)

    @property
    def ttd_p95(self) -> float | None:
        return self._percentile(TTD_COLUMNS, 0.95)

    @property
    def ttfr_p50(self) -> float | None:
        return self._percentile(TTFR_COLUMNS, 0.5)

    @property
    def ttfr_p95(self) -> float | None:
        return self._percentile(TTFR_COLUMNS, 0.95)

    def cost_per_delivered(self) -> dict[str, Decimal | None]:
        """Per currency: what was spent on messages priced in it, per delivered one among them."""
        return {
            currency: (cost / delivered).quantize(Decimal("0.000001")) if delivered else None
            for currency, cost in sorted(self.costs.items())
            for delivered in [self.delivered_by_currency.get(currency, 0)]
        }

    def add(self, row: dict[str, Any]) -> None:
        for column in COUNT_COLUMNS:
            self.counts[column] += row.get(column) or 0
        if currency := row["currency"]:
            self.costs[currency] = self.costs.get(currency, Decimal(0)) + (row["cost"] or Decimal(0))
            delivered = self.delivered_by_currency.get(currency, 0)
            self.delivered_by_currency[currency] = delivered + (row.get(DELIVERED_COLUMN) or 0)


def _buckets_of(period: Period) -> Q:
    """The cells that add up to the period. Whole UTC days inside an hour-grain period are read
    from day cells, only its ragged ends from hours: a 7 d window reads about 2 days of hour
    cells instead of 7 (measured: 141,000 cells of 840 routes summed in 250 ms, a third of
    that with days). Every pass updates all grains together, so the two always agree."""
    hours = Q(grain=period.grain, bucket__gte=period.since, bucket__lt=period.until)
    if period.grain != Grain.HOUR:
        return hours
    first_day = bucket_start(period.since, Grain.DAY)
    if first_day < period.since:
        first_day += STEPS[Grain.DAY]
    last_day = bucket_start(period.until, Grain.DAY)
    if last_day - first_day < STEPS[Grain.DAY] * 2:
        return hours
    return (
        Q(grain=Grain.DAY, bucket__gte=first_day, bucket__lt=last_day)
        | Q(grain=Grain.HOUR, bucket__gte=period.since, bucket__lt=first_day)
        | Q(grain=Grain.HOUR, bucket__gte=last_day, bucket__lt=period.until)
    )


Model = type[Rollup] | type[RollupReason]
# The coarse rows standing in for each fine table (maintain.coarse_cell).
COARSE: dict[Model, type[CoarseRollup] | type[CoarseRollupReason]] = {
    Rollup: CoarseRollup,
    RollupReason: CoarseRollupReason,
}


def level_for(columns: Iterable[str]) -> str | None:
    """The coarse level that keeps every one of these rollup columns (connection and country,
    or flow; the smallest first), None when only the fine rows do (a network, or a flow on a
    route). A level's rows equal the fine rows added up over the columns it leaves out."""
    needed = set(columns)
    for level, dimensions in sorted(LEVEL_DIMENSIONS.items(), key=lambda item: len(item[1])):
        if needed <= set(dimensions):
            return level
    return None


def _source(model: Model, scope: Scope, group_by: Iterable[str]) -> Any:
    """The fewest rows that answer: the level that keeps what the question groups by or narrows."""
    level = level_for(scope.columns() | {GROUP_COLUMNS[name] for name in group_by})
    return model.objects.all() if level is None else COARSE[model].objects.filter(level=level)


def _cells(model: Model, period: Period, scope: Scope, *, group_by: Iterable[str] = (), by_bucket: bool = False) -> Any:
    """The period's cells within `scope`; `by_bucket`: in the period's own grain only (a trend)."""
    buckets = Q(grain=period.grain, bucket__gte=period.since, bucket__lt=period.until)
    rows = _source(model, scope, group_by)
    return rows.filter(buckets if by_bucket else _buckets_of(period)).filter(scope.condition()).order_by()


def _group_columns(group_by: Iterable[str]) -> list[str]:
    return [GROUP_COLUMNS[name] for name in group_by]


def _group_of(row: dict[str, Any], group_by: Sequence[str]) -> tuple[Any, ...]:
    return tuple(row[GROUP_COLUMNS[name]] for name in group_by)


def rollup_figures(
    *,
    period: Period,
    scope: Scope = Scope(),
    group_by: Sequence[str] = (),
    columns: Sequence[str] = COUNT_COLUMNS,
    reasons: bool = True,
) -> list[Figures]:
    """The figures of each group that had messages in the period, most messages first; with no
    `group_by`, one Figures for everything (zeros when nothing was sent). Two queries, one
    without `reasons`. Only `columns` are summed (the others stay zero): a window holds tens of
    thousands of cells, and the forty histogram columns are most of the work."""
    group_columns = _group_columns(group_by)
    sums = {column: Sum(column) for column in columns}
    rows = (
        _cells(Rollup, period, scope, group_by=group_by)
        .values(*group_columns, "currency")
        .annotate(**sums, cost=Sum("cost"))
    )
    groups: dict[tuple[Any, ...], Figures] = {}
    for row in rows:
        key = _group_of(row, group_by)
        if key not in groups:
            groups[key] = Figures(group=dict(zip(group_by, key, strict=True)))
        groups[key].add(row)
    if reasons:
        _add_reasons(groups, period, scope, group_by)
    if not group_by:
        return [groups.get((), Figures(group={}))]
    return sorted(groups.values(), key=lambda f: (-f.messages, tuple(str(v) for v in f.group.values())))


def _add_reasons(groups: dict[tuple[Any, ...], Figures], period: Period, scope: Scope, group_by: Sequence[str]) -> None:
    columns = _group_columns(group_by)
    reasons = (
        _cells(RollupReason, period, scope, group_by=group_by)
        .values(*columns, "reason", "error_class")
        .annotate(n=Sum("count"))
    )
    for row in reasons:
        figures = groups.get(_group_of(row, group_by))
        if figures is not None and row["n"]:
            figures.reasons.append(ReasonFigure(row["reason"], row["error_class"], row["n"]))
    for figures in groups.values():
        figures.reasons.sort(key=lambda r: (-r.messages, r.reason, r.error_class))


def regroup(figures: Iterable[Figures], group_by: Sequence[str]) -> list[Figures]:
    """Finer groups added up into coarser ones (`group_by` a subset of theirs), most messages
    first: one query serves the totals and several breakdowns."""
    merged: dict[tuple[Any, ...], Figures] = {}
    for fine in figures:
        key = tuple(fine.group[name] for name in group_by)
        into = merged.setdefault(key, Figures(group=dict(zip(group_by, key, strict=True))))
        for column, count in fine.counts.items():
            into.counts[column] += count
        for currency, cost in fine.costs.items():
            into.costs[currency] = into.costs.get(currency, Decimal(0)) + cost
            delivered = fine.delivered_by_currency.get(currency, 0)
            into.delivered_by_currency[currency] = into.delivered_by_currency.get(currency, 0) + delivered
        into.reasons.extend(fine.reasons)
    for coarse in merged.values():
        by_reason: dict[tuple[str, str], int] = defaultdict(int)
        for reason in coarse.reasons:
            by_reason[(reason.reason, reason.error_class)] += reason.messages
        coarse.reasons = [ReasonFigure(r, c, n) for (r, c), n in by_reason.items()]
        coarse.reasons.sort(key=lambda r: (-r.messages, r.reason, r.error_class))
    return sorted(merged.values(), key=lambda f: (-f.messages, tuple(str(v) for v in f.group.values())))


# What a comparison needs of the previous period: no histograms.
BASIC_COLUMNS: tuple[str, ...] = ("messages", *STATUS_COLUMNS.values(), "missing", "resends", "fallbacks")


@dataclass(frozen=True)
class Point:
    """One bucket of a trend."""

    bucket: datetime
    messages: int
    delivered: int
    failed: int

    @property
    def delivery_rate(self) -> float | None:
        final = self.delivered + self.failed
        return self.delivered / final if final else None


def rollup_series(
    *, period: Period, scope: Scope = Scope(), group_by: Sequence[str] = ()
) -> dict[tuple[Any, ...], list[Point]]:
    """Per group, a point for every bucket of the period (zeros where nothing was sent), oldest
    first. One query."""
    columns = _group_columns(group_by)
    sums = {column: Sum(column) for column in ("messages", DELIVERED_COLUMN, *FAILED_COLUMNS)}
    rows = _cells(Rollup, period, scope, group_by=group_by, by_bucket=True).values(*columns, "bucket").annotate(**sums)
    found: dict[tuple[Any, ...], dict[datetime, Point]] = defaultdict(dict)
    for row in rows:
        failed = sum(row[column] or 0 for column in FAILED_COLUMNS)
        point = Point(row["bucket"], row["messages"] or 0, row[DELIVERED_COLUMN] or 0, failed)
        found[_group_of(row, group_by)][row["bucket"]] = point
    if not group_by:
        found.setdefault((), {})
    return {
        key: [points.get(bucket) or Point(bucket, 0, 0, 0) for bucket in period.buckets()]
        for key, points in found.items()
    }


@dataclass(frozen=True)
class Comparison:
    """A group's figures now and in the previous period of equal length."""

    current: Figures
    previous: Figures | None

    @property
    def rate_change(self) -> float | None:
        """Change of the delivery rate, in percentage points."""
        if self.previous is None or self.current.delivery_rate is None or self.previous.delivery_rate is None:
            return None
        return (self.current.delivery_rate - self.previous.delivery_rate) * 100

    @property
    def volume_change(self) -> float | None:
        """Change of the volume, as a fraction of the previous one."""
        if self.previous is None or not self.previous.messages:
            return None
        return (self.current.messages - self.previous.messages) / self.previous.messages


def rollup_comparison(*, period: Period, scope: Scope = Scope(), group_by: Sequence[str] = ()) -> list[Comparison]:
    """rollup_figures of the period, each with its group's figures in the previous period."""
    earlier = rollup_figures(
        period=period.previous, scope=scope, group_by=group_by, columns=BASIC_COLUMNS, reasons=False
    )
    before = {tuple(f.group.values()): f for f in earlier}
    return [
        Comparison(current, before.get(tuple(current.group.values())))
        for current in rollup_figures(period=period, scope=scope, group_by=group_by)
    ]
