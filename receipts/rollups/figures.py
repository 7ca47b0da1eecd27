"""What one message adds to the rollups: its contribution, a pure function of its row.

The rollups are sums of contributions. Maintaining them is then exact whatever order receipts
arrive in, however often a provider repeats one, and when a late "delivered" replaces a
failure: each pass subtracts what a message contributed before and adds what it contributes
now (maintain.py), and a recount adds up every message's contribution from scratch (recount.py).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from receipts.reasons import ErrorClass
from receipts.statuses import FINAL_STATUSES, PRECEDENCE, Status

# Upper bounds, in seconds, of the time histograms' buckets; a last bucket takes the rest.
# Dense under a minute, where OTPs live, and up to the hour that receipts SLAs rarely exceed.
HISTOGRAM_BOUNDS: tuple[int, ...] = (1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600)
HISTOGRAM_BUCKETS = len(HISTOGRAM_BOUNDS) + 1

STATUS_COLUMNS: dict[str, str] = {status.value: f"status_{status.value}" for status in PRECEDENCE}
CLASS_COLUMNS: dict[str, str] = {error_class.value: f"class_{error_class.value}" for error_class in ErrorClass}
TTFR_COLUMNS: tuple[str, ...] = tuple(f"ttfr_{i}" for i in range(HISTOGRAM_BUCKETS))
TTD_COLUMNS: tuple[str, ...] = tuple(f"ttd_{i}" for i in range(HISTOGRAM_BUCKETS))
# Every integer column of a rollup row, in one order for SQL and Python alike.
COUNT_COLUMNS: tuple[str, ...] = (
    "messages",
    *STATUS_COLUMNS.values(),
    *CLASS_COLUMNS.values(),
    "missing",
    "resends",
    "fallbacks",
    "costed",
    *TTFR_COLUMNS,
    *TTD_COLUMNS,
)
SUM_COLUMNS: tuple[str, ...] = ("cost",)
# The dimensions of a rollup row after its grain and bucket.
DIMENSIONS: tuple[str, ...] = ("connection_id", "country", "network", "flow", "currency")

# The columns of receipts_message a contribution is computed from.
MESSAGE_FIELDS: tuple[str, ...] = (
    "id",
    "submitted_at",
    "connection_id",
    "country",
    "network",
    "flow",
    "currency",
    "status",
    "reason",
    "error_class",
    "first_receipt_at",
    "final_at",
    "no_receipt_at",
    "chain_root_id",
    "fallbacks",
    "cost",
)


def histogram_bucket(seconds: float) -> int:
    """The index of the bucket holding `seconds` (negative durations, a provider clock behind
    ours, count in the first)."""
    return bisect.bisect_left(HISTOGRAM_BOUNDS, max(seconds, 0))


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start) / timedelta(seconds=1)


@dataclass(frozen=True)
class Contribution:
    """What a message counts for, and where: one per message, kept as its snapshot."""

    minute: datetime  # its submission, to the minute (UTC)
    connection_id: int
    country: str
    network: str
    flow: str
    currency: str
    status: str
    error_class: str
    reason: str
    ttfr_bucket: int | None  # time to first receipt
    ttd_bucket: int | None  # time to delivery
    missing: bool
    resend: bool
    fallbacks: int
    cost: Decimal | None

    @property
    def dimensions(self) -> tuple[Any, ...]:
        return (self.connection_id, self.country, self.network, self.flow, self.currency)

    def counts(self) -> dict[str, int]:
        counts = {"messages": 1, STATUS_COLUMNS[self.status]: 1}
        if self.error_class:
            counts[CLASS_COLUMNS[self.error_class]] = 1
        for flag, column in ((self.missing, "missing"), (self.resend, "resends"), (self.cost is not None, "costed")):
            if flag:
                counts[column] = 1
        if self.fallbacks:
            counts["fallbacks"] = self.fallbacks
        if self.ttfr_bucket is not None:
            counts[TTFR_COLUMNS[self.ttfr_bucket]] = 1
        if self.ttd_bucket is not None:
            counts[TTD_COLUMNS[self.ttd_bucket]] = 1
        return counts


def contribution(row: Mapping[str, Any]) -> Contribution:
    """The contribution of a message, from its MESSAGE_FIELDS."""
    submitted: datetime = row["submitted_at"]
    first = _seconds(submitted, row["first_receipt_at"])
    delivered = _seconds(submitted, row["final_at"]) if row["status"] == Status.DELIVERED else None
    return Contribution(
        minute=submitted.replace(second=0, microsecond=0),
        connection_id=row["connection_id"],
        country=row["country"],
        network=row["network"],
        flow=row["flow"],
        currency=row["currency"],
        status=row["status"],
        error_class=row["error_class"] or "",
        reason=row["reason"] or "",
        ttfr_bucket=None if first is None else histogram_bucket(first),
        ttd_bucket=None if delivered is None else histogram_bucket(delivered),
        # Reported past its receipt SLA and still without a final status.
        missing=row["no_receipt_at"] is not None and row["status"] not in FINAL_STATUSES,
        resend=row["chain_root_id"] is not None,
        fallbacks=row["fallbacks"],
        cost=row["cost"],
    )


def percentile(counts: Sequence[int], fraction: float) -> float | None:
    """The `fraction` percentile, in seconds, of a histogram's counts (HISTOGRAM_BOUNDS): the
    upper bound of the bucket it falls in, interpolated linearly inside it. None when empty;
    beyond the last bound it is reported as the last bound (the truth is "more than an hour")."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count > 0 and seen + count >= rank:
            if index >= len(HISTOGRAM_BOUNDS):
                return float(HISTOGRAM_BOUNDS[-1])
            lower = HISTOGRAM_BOUNDS[index - 1] if index else 0
            upper = HISTOGRAM_BOUNDS[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return float(HISTOGRAM_BOUNDS[-1])
