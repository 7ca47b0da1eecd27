"""A report's rows: the rollups' figures of a period, one row per flow, connection or country."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q, Sum

from receipts.models import Connection
from receipts.rollups.figures import STATUS_COLUMNS, TTD_COLUMNS, percentile
from receipts.rollups.models import Grain, Rollup, RollupReason
from receipts.statuses import FAILURE_STATUSES, Status

FAILED_COLUMNS = [STATUS_COLUMNS[status] for status in sorted(FAILURE_STATUSES)]
SUMMED = ["messages", STATUS_COLUMNS[Status.DELIVERED], *FAILED_COLUMNS, "missing", "resends", "fallbacks", "costed"]
TOP_REASONS = 3


@dataclass
class Row:
    group: str
    currency: str
    messages: int = 0
    delivered: int = 0
    failed: int = 0
    missing: int = 0
    resends: int = 0
    fallbacks: int = 0
    cost: Decimal = Decimal(0)
    delivery_times: list[int] = field(default_factory=lambda: [0] * len(TTD_COLUMNS))
    reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return self.messages - self.delivered - self.failed

    @property
    def delivery_rate(self) -> float | None:
        final = self.delivered + self.failed
        return self.delivered / final if final else None

    @property
    def cost_per_delivered(self) -> Decimal | None:
        return (self.cost / self.delivered).quantize(Decimal("0.000001")) if self.delivered and self.cost else None


def _hours(start: datetime, end: datetime) -> Q:
    # Hour buckets: a period in a zone whose offset is not whole hours is read to the hour.
    return Q(grain=Grain.HOUR, bucket__gte=start - timedelta(minutes=start.minute), bucket__lt=end)


def report_rows(
    *, start: datetime, end: datetime, group_by: str, flow: str = "", connection_id: int | None = None
) -> list[Row]:
    """One row per group (and currency, never added across), busiest first."""
    scope = _hours(start, end)
    if flow:
        scope &= Q(flow=flow)
    if connection_id is not None:
        scope &= Q(connection_id=connection_id)
    key = "connection_id" if group_by == "connection" else group_by
    names = dict(Connection.objects.values_list("pk", "slug")) if key == "connection_id" else {}
    rows: dict[tuple[str, str], Row] = {}
    sums = {column: Sum(column) for column in (*SUMMED, *TTD_COLUMNS)}
    for values in Rollup.objects.filter(scope).values(key, "currency").annotate(**sums, total_cost=Sum("cost")):
        group = names.get(values[key], str(values[key])) if names else (values[key] or "(none)")
        row = rows.setdefault((group, values["currency"]), Row(group=group, currency=values["currency"]))
        row.messages += values["messages"]
        row.delivered += values[STATUS_COLUMNS[Status.DELIVERED]]
        row.failed += sum(values[column] for column in FAILED_COLUMNS)
        row.missing += values["missing"]
        row.resends += values["resends"]
        row.fallbacks += values["fallbacks"]
        row.cost += values["total_cost"] or 0
        row.delivery_times = [a + values[c] for a, c in zip(row.delivery_times, TTD_COLUMNS, strict=True)]
    reasons: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for values in (
        RollupReason.objects.filter(scope).values(key, "reason").annotate(count=Sum("count")).order_by("-count")
    ):
        group = names.get(values[key], str(values[key])) if names else (values[key] or "(none)")
        reasons[group].append((values["reason"], values["count"]))
    for row in rows.values():
        row.reasons = reasons.get(row.group, [])[:TOP_REASONS]
    return sorted((row for row in rows.values() if row.messages), key=lambda row: (-row.messages, row.group))


CSV_HEADER = [
    "group", "messages", "delivered", "failed", "pending", "delivery_rate", "missing_receipts",
    "p50_seconds_to_delivery", "p95_seconds_to_delivery", "resends", "fallbacks", "cost", "currency",
    "cost_per_delivered", "top_reasons",
]  # fmt: skip


def _number(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def report_csv(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(
            [
                # A group name starting with = + - @ would be a formula in a spreadsheet.
                ("'" + row.group) if row.group[:1] in "=+-@" else row.group,
                row.messages, row.delivered, row.failed, row.pending, _number(row.delivery_rate, 4), row.missing,
                _number(percentile(row.delivery_times, 0.5), 1), _number(percentile(row.delivery_times, 0.95), 1),
                row.resends, row.fallbacks, row.cost if row.cost else "", row.currency,
                row.cost_per_delivered or "", "; ".join(f"{reason} {count}" for reason, count in row.reasons),
            ]
        )  # fmt: skip
    return out.getvalue()
