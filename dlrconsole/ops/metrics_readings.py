"""What /metrics reads from the database at scrape time: plain functions, one per reading.

Read at scrape time rather than counted in the processes that do the work, so the figures are
right across any number of web and Celery processes on any number of hosts, and across
restarts. Each query is bounded whatever the tables hold (docs/MONITORING.md gives the plans):
event counts cover a recent window through an index on its time column or a range of the
primary key; open work is counted through the partial index its
worker scans, and only up to COUNT_CAP.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import BooleanField, Count, ExpressionWrapper, Max, Min, Model, Q, QuerySet, Sum
from django_celery_beat.models import PeriodicTask

from alerts.models import Alert
from receipts.models import Connection, OutboxEvent, Receipt, WebhookRefusal
from receipts.statuses import Status
from retries.feed.models import FeedAttempt, FeedDelivery
from retries.models import Attempt, Decision

# The window event counts cover: a scrape every 15 to 60 s sees each event in several windows,
# and `avg_over_time` smooths them.
WINDOW = timedelta(minutes=5)
# Open work beyond this is reported as this: the figure only has to say "far too much", and
# counting a runaway backlog row by row would slow the scrape that reports it.
COUNT_CAP = 100_000
# Tables without an index on their time column are read by primary-key range (ids grow with
# time): a window's rows are found by probing back from the newest id in growing steps, at most
# this many ids back, so a window is exact up to this many rows (333 a second over 5 minutes).
WINDOW_IDS_MAX = 100_000
# Attempts end long after they are created (a retry waits, a deadline is hours away), so their
# ids do not follow their end: the ones looked at for "finished recently" are this many newest.
ATTEMPTS_LOOKBACK = 20_000
# The attempt runner runs every 5 s; an attempt due longer ago than this is stuck, not queued.
OVERDUE_AFTER = timedelta(minutes=1)


def capped_count(queryset: QuerySet[Model]) -> int:
    """COUNT(*) over at most COUNT_CAP rows: `SELECT count(*) FROM (... LIMIT n)`."""
    return queryset.order_by().values("pk")[:COUNT_CAP].count()


def _newest_id(queryset: QuerySet[Model]) -> int | None:
    return queryset.order_by("-pk").values_list("pk", flat=True).first()


def _window_by_id(queryset: QuerySet[Model], column: str, since: datetime) -> QuerySet[Model]:
    """Rows with `column` >= `since`, for a column that grows with the id: each probe is one
    backward step of the primary key's index, so finding the range costs a few index reads and
    counting it reads at most four times the window's rows."""
    newest = _newest_id(queryset)
    if newest is None:
        return queryset.none()
    floor, step = newest - WINDOW_IDS_MAX, 256
    while step < WINDOW_IDS_MAX:
        probe = queryset.filter(pk__lte=newest - step).order_by("-pk").values_list(column, "pk").first()
        if probe is None or probe[0] < since:
            floor = probe[1] if probe is not None else 0
            break
        step *= 4
    return queryset.filter(pk__gte=floor, **{f"{column}__gte": since})


def receipts_recent(*, since: datetime) -> dict[tuple[str, str], int]:
    """Receipts received since `since`, by (connection slug, normalized status); every
    enabled connection has every status, zero when it received none."""
    window = Receipt.objects.filter(received_at__gte=since)
    rows = list(window.values("connection_id", "status").annotate(n=Count("*")).order_by())
    # Read after the receipts, so a connection added meanwhile is known; one with receipts
    # cannot be deleted (PROTECT).
    slugs = dict(Connection.objects.values_list("id", "slug"))
    counts = {
        (slug, status): 0
        for slug in Connection.objects.filter(enabled=True).values_list("slug", flat=True)
        for status in Status.values
    }
    for row in rows:
        counts[(slugs[row["connection_id"]], row["status"])] = row["n"]
    return counts


def webhooks_refused_recent(*, since: datetime) -> dict[tuple[str, str], int]:
    """Webhooks refused since `since` (receipts/refusals.py counts them per minute), by
    (connection slug, reason); only the pairs that had refusals (a minute index range)."""
    start = since.replace(second=0, microsecond=0)
    rows = WebhookRefusal.objects.filter(minute__gte=start).values("connection__slug", "reason")
    totals = rows.annotate(n=Sum("count")).order_by()
    return {(row["connection__slug"], row["reason"]): int(row["n"]) for row in totals}


def _pending_outbox() -> QuerySet[OutboxEvent]:
    # Exactly the predicate of outbox_pending_idx, so the planner reads that partial index.
    return OutboxEvent.objects.filter(processed_at__isnull=True, failed_at__isnull=True)


def outbox_state(*, now: datetime) -> dict[str, float]:
    """Pending and parked events, and the age of the oldest pending one (0 when none)."""
    oldest = _pending_outbox().aggregate(oldest=Min("created_at"))["oldest"]
    return {
        "pending": capped_count(_pending_outbox()),
        "parked": capped_count(OutboxEvent.objects.filter(failed_at__isnull=False)),
        "lag_seconds": max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
    }


def decisions_recent(*, since: datetime) -> dict[str, int]:
    """Decisions taken since `since`, by state."""
    counts = dict.fromkeys(Decision.State.values, 0)
    rows = _window_by_id(Decision.objects.all(), "created_at", since).values("state").annotate(n=Count("*"))
    counts.update({row["state"]: row["n"] for row in rows.order_by()})
    return counts


OPEN_OUTCOMES = (Attempt.Outcome.SCHEDULED, Attempt.Outcome.RUNNING)


def _open_attempts() -> QuerySet[Attempt]:
    # The predicate of attempt_due_idx, so the planner reads that partial index.
    return Attempt.objects.filter(outcome__in=OPEN_OUTCOMES)


def attempts_open() -> dict[str, int]:
    """Attempts waiting to run or running, by outcome."""
    return {outcome: capped_count(_open_attempts().filter(outcome=outcome)) for outcome in OPEN_OUTCOMES}


def attempts_finished(*, since: datetime) -> dict[str, int]:
    """Attempts that ended since `since`, by outcome (succeeded, failed, cancelled)."""
    counts = {outcome: 0 for outcome in Attempt.Outcome.values if outcome not in OPEN_OUTCOMES}
    newest = _newest_id(Attempt.objects.all()) or 0
    recent = Attempt.objects.filter(pk__gt=newest - ATTEMPTS_LOOKBACK, finished_at__gte=since)
    rows = recent.values("outcome").annotate(n=Count("*"))
    counts.update({row["outcome"]: row["n"] for row in rows.order_by() if row["outcome"] in counts})
    return counts


def attempts_overdue(*, now: datetime) -> int:
    """Open attempts due more than OVERDUE_AFTER ago: the runner is not keeping up, or a
    worker died holding one (its lease, `due_at`, ran out)."""
    return capped_count(_open_attempts().filter(due_at__lt=now - OVERDUE_AFTER))


def feed_state(*, since: datetime) -> dict[str, dict[str, int]]:
    """Feed POSTs since `since` by outcome (delivered: a 2xx answer; failed: anything else),
    and open deliveries by status (pending, failed and retrying)."""
    posts = {"delivered": 0, "failed": 0}
    ok = ExpressionWrapper(Q(status_code__gte=200, status_code__lt=300), output_field=BooleanField())
    rows = _window_by_id(FeedAttempt.objects.all(), "attempted_at", since).values(ok=ok).annotate(n=Count("*"))
    for row in rows.order_by():
        posts["delivered" if row["ok"] else "failed"] += row["n"]
    backlog = {
        status: capped_count(FeedDelivery.objects.filter(status=status))
        for status in (FeedDelivery.Status.PENDING.value, FeedDelivery.Status.FAILED.value)
    }
    return {"posts": posts, "backlog": backlog}


def beat_last_run() -> datetime | None:
    """When beat last ran a periodic task, as beat saves it: django-celery-beat's scheduler
    writes each task's last_run_at to the database every 3 minutes (celery's beat_sync_every)
    and when it stops, so a healthy beat's figure is at most that old plus one interval."""
    return PeriodicTask.objects.filter(enabled=True).aggregate(last=Max("last_run_at"))["last"]


def open_alerts() -> dict[str, int]:
    """Unacknowledged alerts, by source."""
    return {
        source: capped_count(Alert.objects.filter(acknowledged_at__isnull=True, source=source))
        for source in Alert.Source.values
    }
