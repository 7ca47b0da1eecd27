"""Reads for the console's alert pages: the list in its order, the chart around a firing and
the messages behind an alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, IntegerField, Max, Q, QuerySet, Value, When
from django.utils import timezone

from alerts import metrics, notify
from alerts.models import SEVERITY_ORDER, Alert, AlertRule, Metric
from receipts.rollups.maintain import bucket_start, kept_since
from receipts.rollups.models import Grain
from receipts.rollups.selectors import GRAIN_NAMES
from receipts.statuses import FAILURE_STATUSES

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 600, 160, 4
CHART_SPAN = timedelta(minutes=60)  # shown before the firing, and after it at most
HOUR_CHART_BEFORE, HOUR_CHART_AFTER = timedelta(hours=24), timedelta(hours=6)  # the same, in hours


def alerts_for_console(now: datetime | None = None) -> QuerySet[Alert]:
    """Open alerts first (snoozed ones after the others), by severity then newest; then resolved."""
    now = now or timezone.now()
    return (
        Alert.objects.select_related("rule", "message", "message__connection", "acknowledged_by")
        .annotate(
            open_rank=Case(
                When(state=Alert.State.OPEN, snoozed_until__gt=now, then=Value(1)),
                When(state=Alert.State.OPEN, then=Value(0)),
                default=Value(2),
                output_field=IntegerField(),
            ),
            severity_rank=Case(
                *(When(severity=severity, then=Value(rank)) for severity, rank in SEVERITY_ORDER.items()),
                default=Value(9),
                output_field=IntegerField(),
            ),
        )
        .order_by("open_rank", "severity_rank", "-created_at", "-id")
    )


def last_evaluation() -> datetime | None:
    return AlertRule.objects.filter(enabled=True).aggregate(last=Max("evaluated_at"))["last"]


@dataclass(frozen=True)
class Chart:
    points: str  # SVG polyline points
    threshold_y: float | None
    firing_x: float | None
    resolved_x: float | None
    low: float
    high: float
    start: datetime
    end: datetime
    unit: str
    empty: bool
    grain: str  # "minute" or "hour": what one point is

    @property
    def grain_name(self) -> str:
        """What one point is, in the reader's language."""
        return str(GRAIN_NAMES[Grain.MINUTE if self.grain == "minute" else Grain.HOUR])


@dataclass(frozen=True)
class Statement:
    """A system figure in words: not kept over time, so no chart; what fired it and what it is now."""

    fired: str
    threshold: str
    now: str


def _span(alert: Alert, now: datetime) -> tuple[str, datetime, datetime]:
    """(grain, start, end) of the chart: minutes an hour around the firing for windows up to an
    hour whose minutes are still kept; otherwise hours, a day before the firing to six after
    (a 24-hour rate drawn per minute is noise, and minute rows go after a few days)."""
    rule = alert.rule
    assert rule is not None
    minutes_from = kept_since(Grain.MINUTE, now)
    if rule.window_minutes <= metrics.MINUTE_WINDOW_MAX and (
        minutes_from is None or alert.created_at - CHART_SPAN >= minutes_from
    ):
        grain, before, after = Grain.MINUTE, CHART_SPAN, CHART_SPAN
    else:
        grain, before, after = Grain.HOUR, HOUR_CHART_BEFORE, HOUR_CHART_AFTER
    fired = bucket_start(alert.created_at, grain)
    step = timedelta(minutes=1) if grain == Grain.MINUTE else timedelta(hours=1)
    end = min(alert.resolved_at or now, now, alert.created_at + after)
    return grain, fired - before, max(bucket_start(end, grain), fired) + step


def chart_for(alert: Alert, now: datetime | None = None) -> Chart | None:
    """The rule's metric per minute (or hour, see _span) around the firing, scaled into a
    CHART_WIDTH x CHART_HEIGHT box. None for alerts without a rule or about the system."""
    rule = alert.rule
    if rule is None or rule.is_system:
        return None
    now = now or timezone.now()
    grain, start, end = _span(alert, now)
    from alerts.evaluation import watch_of

    series = metrics.series(watch_of(rule), start=start, end=end, grain=grain)
    values = [reading.value for _, reading in series if reading.value is not None]
    threshold = float(alert.threshold) if alert.threshold is not None else None
    candidates = values + ([threshold] if threshold is not None else [])
    low, high = (min(candidates), max(candidates)) if candidates else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    span = (end - start).total_seconds()

    def x(moment: datetime) -> float:
        return round(CHART_PAD + (CHART_WIDTH - 2 * CHART_PAD) * (moment - start).total_seconds() / span, 1)

    def y(value: float) -> float:
        return round(CHART_HEIGHT - CHART_PAD - (CHART_HEIGHT - 2 * CHART_PAD) * (value - low) / (high - low), 1)

    points = " ".join(f"{x(moment)},{y(reading.value)}" for moment, reading in series if reading.value is not None)
    return Chart(
        points=points, threshold_y=y(threshold) if threshold is not None else None, firing_x=x(alert.created_at),
        resolved_x=x(alert.resolved_at) if alert.resolved_at and alert.resolved_at < end else None,
        low=low, high=high, start=start, end=end, unit=rule.unit, empty=not values,
        grain="minute" if grain == Grain.MINUTE else "hour",
    )  # fmt: skip


def statement_for(alert: Alert, now: datetime | None = None) -> Statement | None:
    """For a system metric's alert: its figure at the firing and now, in words."""
    rule = alert.rule
    if rule is None or not rule.is_system:
        return None
    reading = metrics.SYSTEM_READERS[rule.metric](now or timezone.now())
    unit = rule.unit
    return Statement(
        fired=notify.figure(alert.value, unit),
        threshold=f"{rule.get_comparison_display()} {notify.figure(float(rule.threshold), unit)}",
        now=notify.figure(reading.value, unit),
    )


def messages_query(alert: Alert) -> dict[str, Any] | None:
    """The console search's filters (receipts/filters.py) for the messages behind an alert: the
    rule's scope over the window its figure was read from (alerts/metrics.py `window_for`),
    narrowed to the messages the figure counts against (failures, missing receipts)."""
    rule = alert.rule
    if rule is None or rule.is_system:
        return None
    window = metrics.window_for(rule.window_minutes, alert.created_at)
    query: dict[str, Any] = {
        "submitted_after": window.start.isoformat(timespec="seconds"),
        "submitted_before": window.end.isoformat(timespec="seconds"),
    }
    if rule.connection_id:
        query["connection"] = rule.connection.slug if rule.connection else ""
    for name in ("country", "network", "flow"):
        if getattr(rule, name):
            query[name] = getattr(rule, name)
    if rule.metric == Metric.DELIVERY_RATE:
        query["status"] = sorted(FAILURE_STATUSES)
    elif rule.metric == Metric.CLASS_RATE:
        query["error_class"] = rule.error_class
    elif rule.metric == Metric.REASON_RATE:
        query["reason"] = rule.reason
    elif rule.metric == Metric.MISSING_RATE:
        query["missing_receipt"] = "true"
    elif rule.metric == Metric.P95_DELIVERY:
        query["status_group"] = "delivered"
    return query


def open_count() -> int:
    return Alert.objects.filter(Q(state=Alert.State.OPEN)).count()
