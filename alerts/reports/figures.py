"""A report's rows: the rollups' figures of a period (receipts.rollups.selectors), one row per
flow, connection or country, written as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from receipts.models import Connection
from receipts.rollups.models import Grain
from receipts.rollups.selectors import Figures, Scope, period_between, rollup_figures

TOP_REASONS = 3


@dataclass(frozen=True)
class Row:
    group: str
    figures: Figures


def report_rows(
    *, start: datetime, end: datetime, group_by: str, flow: str = "", connection_id: int | None = None
) -> list[Row]:
    """One row per group, busiest first. Hour cells: a period in a zone whose offset is not a
    whole number of hours is read to the hour."""
    figures = rollup_figures(
        period=period_between(start, end, Grain.HOUR),
        scope=Scope(connection_id=connection_id, flow=flow or None),
        group_by=(group_by,),
    )
    slugs = dict(Connection.objects.values_list("pk", "slug")) if group_by == "connection" else {}
    return [Row(_name(f.group[group_by], slugs), f) for f in figures if f.messages]


def _name(value: object, slugs: dict[int, str]) -> str:
    if slugs:
        return slugs.get(value, str(value))  # type: ignore[call-overload]
    return str(value) if value else "(none)"


CSV_HEADER = [
    "group", "messages", "delivered", "failed", "pending", "delivery_rate", "missing_receipts",
    "p50_seconds_to_delivery", "p95_seconds_to_delivery", "resends", "fallbacks", "cost", "currency",
    "cost_per_delivered", "top_reasons",
]  # fmt: skip


def _number(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def report_csv(rows: Sequence[Row]) -> str:
    """One line per group and currency it was priced in (costs are never added across
    currencies); a group with no price at all has one line with empty cost columns."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in rows:
        f = row.figures
        # A group name starting with = + - @ would be a formula in a spreadsheet.
        group = ("'" + row.group) if row.group[:1] in "=+-@" else row.group
        reasons = "; ".join(f"{reason.reason} {reason.messages}" for reason in f.reasons[:TOP_REASONS])
        per_delivered = f.cost_per_delivered()
        for currency in sorted(f.costs) or [""]:
            writer.writerow(
                [
                    group, f.messages, f.delivered, f.failed, f.pending, _number(f.delivery_rate, 4), f.missing,
                    _number(f.ttd_p50, 1), _number(f.ttd_p95, 1), f.resends, f.fallbacks,
                    f.costs.get(currency, ""), currency, per_delivered.get(currency) or "", reasons,
                ]
            )  # fmt: skip
    return out.getvalue()
