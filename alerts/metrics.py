"""The figures alert rules watch, read from the rollups (receipts/rollups) and the system's queues.

A round of evaluation reads each distinct window once per source: one SQL SUM over the window's
minute (or hour) rows, grouped by GROUPING SETS for the scopes the rules use (by connection, by
country and flow, everything, ...). The scopes a coarse rollup level keeps (connection and
country, or flow alone) are read from that level, a twentieth of the rows; the others (a
network, a flow on a connection) from the fine rows. 1,000 rules then cost a handful of
queries, not 1,000 scans of the same rows. Each metric is then one small function of the summed
columns.

Windows end at the start of the current minute (or hour): the bucket still filling is left out.
Figures count messages by their submission, so the most recent messages weigh as "not finished
yet" in rates over finished messages and are not missing yet in the missing-receipt rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection as db
from django.db.models import Min, Q
from django.utils import timezone

from receipts.honesty import route_trust_scores
from receipts.models import OutboxEvent, WebhookRefusal
from receipts.refusals import refusals_by_connection, refusals_per_minute
from receipts.rollups.figures import CLASS_COLUMNS, STATUS_COLUMNS, TTD_COLUMNS, percentile
from receipts.rollups.maintain import bucket_start
from receipts.rollups.models import CoarseRollup, CoarseRollupReason, Grain, Rollup, RollupReason
from receipts.rollups.selectors import Period, Scope, level_for
from receipts.statuses import FINAL_STATUSES, Status
from retries.feed.models import FeedDelivery
from retries.models import Attempt

SCOPE: tuple[str, ...] = ("connection_id", "country", "network", "flow")
FINAL_COLUMNS = tuple(STATUS_COLUMNS[status] for status in sorted(FINAL_STATUSES))
DELIVERED = STATUS_COLUMNS[Status.DELIVERED]
COLUMNS: tuple[str, ...] = ("messages", *FINAL_COLUMNS, *CLASS_COLUMNS.values(), "missing", *TTD_COLUMNS)
WEEK = timedelta(days=7)
# An attempt this late past its due time is overdue (the runner passes every 5 seconds).
ATTEMPT_GRACE = timedelta(minutes=2)

ScopeKey = tuple[int | None, str | None, str | None, str | None]
Sums = Mapping[str, int]


@dataclass(frozen=True)
class Window:
    grain: str
    start: datetime
    end: datetime


# Windows up to an hour read minute rows; longer ones read whole hours, ending where the current
# hour starts: a 6-hour window over minute rows at 10 million messages a day is 250,000 rows a
# round, over hour rows a few thousand (bench/alert_evaluation.py).
MINUTE_WINDOW_MAX = 60


def window_for(minutes: int, now: datetime) -> Window:
    """Minute buckets for windows up to MINUTE_WINDOW_MAX, else whole hours."""
    if minutes <= min(MINUTE_WINDOW_MAX, (settings.DLR_ROLLUP_MINUTES_KEEP_HOURS - 1) * 60):
        end = bucket_start(now, Grain.MINUTE)
        return Window(Grain.MINUTE, end - timedelta(minutes=minutes), end)
    end = bucket_start(now, Grain.HOUR)
    return Window(Grain.HOUR, end - timedelta(minutes=minutes), end)


def scope_key(connection_id: int | None, country: str, network: str, flow: str) -> ScopeKey:
    """A rule's scope as the grouped rows' key: None for a dimension it does not fix."""
    return (connection_id, country or None, network or None, flow or None)


def fixed(key: ScopeKey) -> tuple[str, ...]:
    """The dimensions a scope fixes."""
    return tuple(name for name, value in zip(SCOPE, key, strict=True) if value is not None)


@dataclass(frozen=True)
class Source:
    """Where a scope's figures are read: a coarse level (receipts/rollups: connection x country,
    or flow) when it keeps every dimension the scope fixes, else the fine rows. A level's rows
    are the fine rows added up, so the figures are the same; a level has a twentieth of the rows."""

    level: str | None

    @property
    def table(self) -> str:
        return (CoarseRollup if self.level else Rollup)._meta.db_table

    @property
    def reason_table(self) -> str:
        return (CoarseRollupReason if self.level else RollupReason)._meta.db_table

    def where(self) -> tuple[str, list[Any]]:
        return (" AND level = %s", [self.level]) if self.level else ("", [])


def source_of(key: ScopeKey) -> Source:
    return Source(level_for(fixed(key)))


def _by_source(keys: Iterable[ScopeKey]) -> dict[Source, set[ScopeKey]]:
    """The scopes grouped by where they are read. When one needs the fine rows, all are read from
    them: that one scan answers every scope, and a level's rows read besides would add to it
    (in minute buckets a level saves little: a minute of a route has few networks and flows)."""
    keys = set(keys)
    sources = {key: source_of(key) for key in keys}
    if any(source.level is None for source in sources.values()):
        return {Source(None): keys}
    grouped: dict[Source, set[ScopeKey]] = defaultdict(set)
    for key, source in sources.items():
        grouped[source].add(key)
    return grouped


def _grouping(keys: Iterable[ScopeKey], extra: str = "") -> tuple[str, str, str]:
    """(the scope's select list, the GROUPING SETS, the dimensions any key fixes) for these
    keys: a dimension no key fixes is selected as NULL (PostgreSQL accepts only grouped columns,
    and a coarse level has no network column)."""
    patterns = {fixed(key) for key in keys}
    used = [name for name in SCOPE if any(name in pattern for pattern in patterns)]
    select = ", ".join(name if name in used else f"NULL AS {name}" for name in SCOPE)
    sets = ", ".join("(" + ", ".join(([extra] if extra else []) + list(pattern)) + ")" for pattern in sorted(patterns))
    return select, sets or "(" + extra + ")", ", ".join(([extra] if extra else []) + used)


def _sets_in_python(
    rows: Iterable[Sequence[Any]], used: Sequence[str], keys: Iterable[ScopeKey], extra: int = 0
) -> list[tuple[Any, ...]]:
    """GROUPING SETS for SQLite, which has none (the demo's database): each cell row (`extra`
    leading columns, the `used` dimensions, then the figures) added into the group of every
    pattern the keys fix, shaped as the PostgreSQL statements' rows (extra, SCOPE, figures)."""
    patterns = {fixed(key) for key in keys}
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        head, figures = row[:extra], row[extra + len(used) :]
        cell = dict(zip(used, row[extra : extra + len(used)], strict=True))
        for pattern in patterns:
            key = (*head, *(cell[name] if name in pattern else None for name in SCOPE))
            sums = groups.setdefault(key, [0] * len(figures))
            for index, value in enumerate(figures):
                sums[index] += value or 0
    return [(*key, *sums) for key, sums in groups.items()]


def _used(keys: Iterable[ScopeKey]) -> list[str]:
    patterns = {fixed(key) for key in keys}
    return [name for name in SCOPE if any(name in pattern for pattern in patterns)]


def _group_by(columns: str) -> str:
    return f" GROUP BY {columns}" if columns else ""


# The columns each metric reads: a window sums only what its rules need.
METRIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "delivery_rate": FINAL_COLUMNS,
    "class_rate": tuple(CLASS_COLUMNS.values()),
    "reason_rate": (),
    "missing_rate": ("missing",),
    "p95_delivery": TTD_COLUMNS,
    "volume_week": (),
    "signature_failures": (),
    "trust_score": (),  # read by receipts/honesty.py, not from these sums
}
REFUSAL_METRICS = {"signature_failures": WebhookRefusal.Reason.SIGNATURE}


def window_sums(
    window: Window, keys: Iterable[ScopeKey], columns: Iterable[str] = COLUMNS
) -> dict[ScopeKey, dict[str, int]]:
    """`columns` (and messages) summed over the window, for each scope of `keys` (one query per
    source: a coarse level or the fine rows). The window's rows are first summed per cell of the
    dimensions the scopes fix, then per grouping set: grouping sets straight over the rows would
    aggregate each row once per set."""
    wanted = ["messages", *sorted(set(columns) - {"messages"})]
    found: dict[ScopeKey, dict[str, int]] = {}
    for source, source_keys in _by_source(keys).items():
        for row in _window_rows(source, window, source_keys, wanted):
            key: ScopeKey = tuple(row[: len(SCOPE)])
            found[key] = dict(zip(wanted, (int(value) for value in row[len(SCOPE) :]), strict=True))
    return found


def _window_rows(source: Source, window: Window, keys: set[ScopeKey], wanted: list[str]) -> list[tuple[Any, ...]]:
    inner = ", ".join(f'SUM("{column}") AS "{column}"' for column in wanted)
    outer = ", ".join(f'COALESCE(SUM("{column}"), 0)' for column in wanted)
    # The grouping sets are built from SCOPE's fixed names only; values travel as parameters.
    select, sets, used = _grouping(keys)
    level, level_params = source.where()
    cells = (
        f"SELECT {used + ', ' if used else ''}{inner} FROM {source.table} "  # noqa: S608
        f"WHERE grain = %s AND bucket >= %s AND bucket < %s{level}{_group_by(used)}"
    )
    params = [window.grain, window.start, window.end, *level_params]
    with db.cursor() as cursor:
        if db.vendor != "postgresql":
            cursor.execute(cells, params)
            return _sets_in_python(cursor.fetchall(), _used(keys), keys)
        cursor.execute(f"SELECT {select}, {outer} FROM ({cells}) AS cells GROUP BY GROUPING SETS ({sets})", params)  # noqa: S608
        return list(cursor.fetchall())


def reason_sums(window: Window, wanted: Iterable[tuple[str, ScopeKey]]) -> dict[tuple[str, ScopeKey], int]:
    """Failures by reason over the window, for each (reason, scope) of `wanted` (one query per source)."""
    wanted = set(wanted)
    found: dict[tuple[str, ScopeKey], int] = {}
    for source, keys in _by_source(key for _, key in wanted).items():
        pairs = {(reason, key) for reason, key in wanted if key in keys}
        select, sets, used = _grouping((key for _, key in pairs), "reason")
        level, level_params = source.where()
        reasons = sorted({reason for reason, _ in pairs})
        with db.cursor() as cursor:
            if db.vendor != "postgresql":
                cursor.execute(
                    f"SELECT {used}, SUM(count) FROM {source.reason_table} WHERE grain = %s AND bucket >= %s "  # noqa: S608
                    f"AND bucket < %s AND reason IN ({', '.join(['%s'] * len(reasons))}){level} GROUP BY {used}",
                    [window.grain, window.start, window.end, *reasons, *level_params],
                )
                rows = _sets_in_python(cursor.fetchall(), _used(key for _, key in pairs), (k for _, k in pairs), 1)
            else:
                sql = (
                    f"SELECT reason, {select}, SUM(count) FROM (SELECT {used}, SUM(count) AS count "  # noqa: S608
                    f"FROM {source.reason_table} WHERE grain = %s AND bucket >= %s AND bucket < %s "
                    f"AND reason = ANY(%s){level} GROUP BY {used}) AS cells GROUP BY GROUPING SETS ({sets})"
                )
                cursor.execute(sql, [window.grain, window.start, window.end, reasons, *level_params])
                rows = cursor.fetchall()
            found |= {(row[0], tuple(row[1:5])): int(row[5]) for row in rows}
    return found


def _hour_overlap(bucket: datetime | str, start: datetime, end: datetime) -> float:
    """The share of the hour starting at `bucket` that [start, end) covers (the SQL's overlap)."""
    if isinstance(bucket, str):  # SQLite hands back its text, in UTC
        bucket = datetime.fromisoformat(bucket)
    if bucket.tzinfo is None:
        bucket = bucket.replace(tzinfo=UTC)
    covered = min(bucket + timedelta(hours=1), end) - max(bucket, start)
    return max(0.0, covered / timedelta(hours=1))


def volume_last_week(window: Window, keys: Iterable[ScopeKey]) -> dict[ScopeKey, float]:
    """Messages in the same window a week earlier, from hour buckets (minute buckets are gone by
    then), each hour counted for the part of it the window covers."""
    start, end = window.start - WEEK, window.end - WEEK
    overlap = "GREATEST(0, EXTRACT(EPOCH FROM LEAST(bucket + interval '1 hour', %s) - GREATEST(bucket, %s))) / 3600.0"
    found: dict[ScopeKey, float] = {}
    for source, source_keys in _by_source(keys).items():
        select, sets, used = _grouping(source_keys)
        level, level_params = source.where()
        with db.cursor() as cursor:
            if db.vendor != "postgresql":
                by_hour = f"{used}, bucket" if used else "bucket"
                cursor.execute(
                    f"SELECT {by_hour}, SUM(messages) FROM {source.table} "  # noqa: S608
                    f"WHERE grain = %s AND bucket >= %s AND bucket < %s{level} GROUP BY {by_hour}",
                    [Grain.HOUR, bucket_start(start, Grain.HOUR), end, *level_params],
                )
                weighted = [(*row[:-2], row[-1] * _hour_overlap(row[-2], start, end)) for row in cursor.fetchall()]
                rows = _sets_in_python(weighted, _used(source_keys), source_keys)
            else:
                sql = (
                    f"SELECT {select}, COALESCE(SUM(weighted), 0) FROM (SELECT {used + ', ' if used else ''}"  # noqa: S608
                    f"SUM(messages * {overlap}) AS weighted FROM {source.table} WHERE grain = %s AND bucket >= %s "
                    f"AND bucket < %s{level}{_group_by(used)}) AS cells GROUP BY GROUPING SETS ({sets})"
                )
                cursor.execute(sql, [end, start, Grain.HOUR, bucket_start(start, Grain.HOUR), end, *level_params])
                rows = cursor.fetchall()
            found |= {tuple(row[:4]): float(row[4]) for row in rows}
    return found


@dataclass(frozen=True)
class Reading:
    """A metric's value (None: nothing to judge) and the volume it stands on."""

    value: float | None
    volume: int


def _rate(part: int, whole: int) -> Reading:
    return Reading(100.0 * part / whole if whole else None, whole)


def delivery_rate(sums: Sums) -> Reading:
    """Delivered out of the messages that finished (pending ones are not judged yet)."""
    return _rate(sums.get(DELIVERED, 0), sum(sums.get(column, 0) for column in FINAL_COLUMNS))


def class_rate(sums: Sums, error_class: str) -> Reading:
    return _rate(sums.get(CLASS_COLUMNS[error_class], 0), sums.get("messages", 0))


def reason_rate(sums: Sums, failures: int) -> Reading:
    return _rate(failures, sums.get("messages", 0))


def missing_rate(sums: Sums) -> Reading:
    return _rate(sums.get("missing", 0), sums.get("messages", 0))


def p95_delivery(sums: Sums) -> Reading:
    counts = [sums.get(column, 0) for column in TTD_COLUMNS]
    return Reading(percentile(counts, 0.95), sum(counts))


def volume_week(sums: Sums, last_week: float) -> Reading:
    """This window's messages as a % of the same window last week; the volume is last week's."""
    return Reading(100.0 * sums.get("messages", 0) / last_week if last_week else None, round(last_week))


def trust_score(window: Window, scope: ScopeKey) -> Reading:
    """The trust score of the rule's scope over the window (receipts/honesty.py: the rollups,
    the conversions, the day's delivered receipts); its volume the delivered messages judged.
    A few queries per rule: rules on it are few (one per important route)."""
    connection_id, country, network, flow = scope
    judged = route_trust_scores(
        period=Period(window.start, window.end, window.grain),
        scope=Scope(connection_id=connection_id, country=country, network=network, flow=flow),
        group_by=(),
    )[0]
    return Reading(judged.score, judged.signals.delivered)


def outbox_lag(now: datetime) -> Reading:
    """Seconds since the oldest change still waiting for the apps above (0 when none waits)."""
    oldest = OutboxEvent.objects.filter(processed_at__isnull=True, failed_at__isnull=True).aggregate(
        oldest=Min("created_at")
    )["oldest"]
    return Reading(max((now - oldest).total_seconds(), 0.0) if oldest else 0.0, 0)


def feed_backlog(now: datetime) -> Reading:
    due = FeedDelivery.objects.filter(
        status__in=[FeedDelivery.Status.PENDING, FeedDelivery.Status.FAILED], next_attempt_at__lte=now
    ).count()
    return Reading(float(due), 0)


def overdue_attempts(now: datetime) -> Reading:
    late = Attempt.objects.filter(
        Q(outcome__in=[Attempt.Outcome.SCHEDULED, Attempt.Outcome.RUNNING]), due_at__lt=now - ATTEMPT_GRACE
    ).count()
    return Reading(float(late), 0)


def beat_late(now: datetime) -> Reading:
    """How far the latest of beat's interval tasks is past its next run (seconds; 0 when all are
    on time). This evaluation runs on beat too: a beat that stopped altogether shows on the
    alerts page as "rules last evaluated ... ago", not as an alert."""
    from django_celery_beat.models import PeriodicTask

    worst = 0.0
    for task in PeriodicTask.objects.filter(enabled=True, interval__isnull=False).select_related("interval"):
        if task.last_run_at is None or task.interval is None:
            continue
        every = task.interval.schedule.run_every.total_seconds()
        worst = max(worst, (now - task.last_run_at).total_seconds() - every)
    return Reading(worst, 0)


SYSTEM_READERS = {
    "outbox_lag": outbox_lag,
    "feed_backlog": feed_backlog,
    "overdue_attempts": overdue_attempts,
    "beat_late": beat_late,
}


@dataclass(frozen=True)
class Watch:
    """What a rule watches, without the model (metrics knows no rules)."""

    pk: int
    metric: str
    window_minutes: int
    scope: ScopeKey
    error_class: str = ""
    reason: str = ""


def read_all(watches: Sequence[Watch], now: datetime | None = None) -> dict[int, Reading]:
    """Every watch's reading, with one query per window and kind of figure."""
    now = now or timezone.now()
    readings: dict[int, Reading] = {}
    system = {
        metric: reader(now) for metric, reader in SYSTEM_READERS.items() if any(w.metric == metric for w in watches)
    }
    by_window: dict[Window, list[Watch]] = defaultdict(list)
    for watch in watches:
        if watch.metric in system:
            readings[watch.pk] = system[watch.metric]
        else:
            by_window[window_for(watch.window_minutes, now)].append(watch)
    for window, group in by_window.items():
        refused = [w for w in group if w.metric in REFUSAL_METRICS]
        readings |= _refusal_readings(window, refused)
        group = [w for w in group if w.metric not in REFUSAL_METRICS]
        if not group:
            continue
        columns = {column for w in group for column in METRIC_COLUMNS.get(w.metric, COLUMNS)}
        sums = window_sums(window, (w.scope for w in group), columns)
        reasons = reason_sums(window, ((w.reason, w.scope) for w in group if w.metric == "reason_rate"))
        weeks = [w for w in group if w.metric == "volume_week"]
        last_week = volume_last_week(window, (w.scope for w in weeks)) if weeks else {}
        for watch in group:
            if watch.metric == "trust_score":
                readings[watch.pk] = trust_score(window, watch.scope)
            else:
                readings[watch.pk] = _reading(watch, sums.get(watch.scope, {}), reasons, last_week)
    return readings


def _refusal_readings(window: Window, watches: Sequence[Watch]) -> dict[int, Reading]:
    """Refused webhooks in the window, per connection (or all of them): one query per reason."""
    readings: dict[int, Reading] = {}
    for reason in {REFUSAL_METRICS[w.metric] for w in watches}:
        counts = refusals_by_connection(start=window.start, end=window.end, reason=reason)
        for watch in (w for w in watches if REFUSAL_METRICS[w.metric] == reason):
            count = counts.get(watch.scope[0], 0)
            readings[watch.pk] = Reading(float(count), count)
    return readings


def _reading(
    watch: Watch, sums: Sums, reasons: Mapping[tuple[str, ScopeKey], int], last_week: Mapping[ScopeKey, float]
) -> Reading:
    if watch.metric == "delivery_rate":
        return delivery_rate(sums)
    if watch.metric == "class_rate":
        return class_rate(sums, watch.error_class)
    if watch.metric == "reason_rate":
        return reason_rate(sums, reasons.get((watch.reason, watch.scope), 0))
    if watch.metric == "missing_rate":
        return missing_rate(sums)
    if watch.metric == "p95_delivery":
        return p95_delivery(sums)
    if watch.metric == "volume_week":
        return volume_week(sums, last_week.get(watch.scope, 0.0))
    raise ValueError(f"unknown metric {watch.metric!r}")


def series(watch: Watch, *, start: datetime, end: datetime, grain: str) -> list[tuple[datetime, Reading]]:
    """The metric per bucket between start and end (the console's chart around a firing); the
    volume metric is shown as messages per bucket. Empty for system metrics (not kept over time)
    and the trust score (a judgement over a whole window, not a sum of buckets)."""
    if watch.metric in SYSTEM_READERS or watch.metric == "trust_score":
        return []
    if watch.metric in REFUSAL_METRICS:
        return _refusal_series(watch, start=start, end=end, grain=grain)
    narrowed = [(name, value) for name, value in zip(SCOPE, watch.scope, strict=True) if value is not None]
    source = source_of(watch.scope)
    level, level_params = source.where()
    where = "".join(f" AND {name} = %s" for name, _ in narrowed) + level
    params: list[Any] = [grain, start, end, *(value for _, value in narrowed), *level_params]
    sums = ", ".join(f'SUM("{column}")' for column in COLUMNS)
    per_bucket: dict[datetime, dict[str, int]] = {}
    reasons: dict[datetime, int] = {}
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT bucket, {sums} FROM {source.table} "  # noqa: S608 - names from SCOPE only
            f"WHERE grain = %s AND bucket >= %s AND bucket < %s{where} GROUP BY bucket",
            params,
        )
        for row in cursor.fetchall():
            per_bucket[row[0]] = dict(zip(COLUMNS, (int(value or 0) for value in row[1:]), strict=True))
        if watch.metric == "reason_rate":
            cursor.execute(
                f"SELECT bucket, SUM(count) FROM {source.reason_table} "  # noqa: S608
                f"WHERE grain = %s AND bucket >= %s AND bucket < %s{where} AND reason = %s GROUP BY bucket",
                [*params, watch.reason],
            )
            reasons = {row[0]: int(row[1]) for row in cursor.fetchall()}
    points = []
    for moment in _moments(start, end, grain):
        bucket = per_bucket.get(moment, {})
        if watch.metric == "volume_week":
            points.append((moment, Reading(float(bucket.get("messages", 0)), bucket.get("messages", 0))))
        else:
            points.append((moment, _reading(watch, bucket, {(watch.reason, watch.scope): reasons.get(moment, 0)}, {})))
    return points


def _moments(start: datetime, end: datetime, grain: str) -> Iterator[datetime]:
    step = timedelta(minutes=1) if grain == Grain.MINUTE else timedelta(hours=1)
    moment = start
    while moment < end:
        yield moment
        moment += step


def _refusal_series(watch: Watch, *, start: datetime, end: datetime, grain: str) -> list[tuple[datetime, Reading]]:
    """At each bucket, the refusals in the rule's window ending with it: the figure the rule
    compares with its threshold, not a per-bucket count the threshold does not apply to."""
    window = timedelta(minutes=watch.window_minutes)
    per_minute = refusals_per_minute(
        start=start - window, end=end, reason=REFUSAL_METRICS[watch.metric], connection_id=watch.scope[0]
    )
    step = timedelta(minutes=1) if grain == Grain.MINUTE else timedelta(hours=1)
    points = []
    for moment in _moments(start, end, grain):
        count = sum(n for minute, n in per_minute.items() if moment + step - window <= minute < moment + step)
        points.append((moment, Reading(float(count), count)))
    return points
