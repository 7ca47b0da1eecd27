"""The Prometheus exposition: the database's readings at scrape time, and the webhook latency
histogram summed over every process that observed it (docs/MONITORING.md)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from dlrconsole.ops import metrics_readings as readings
from dlrconsole.ops.webhook_latency import WEBHOOK_LATENCY

logger = logging.getLogger(__name__)

# A scrape that waits on a locked or overloaded database must not pile up web workers: each
# reading gives up after this and is reported as down (dlr_metrics_reading_up) instead.
QUERY_TIMEOUT_MS = 2000

WINDOW_WORDS = f"in the last {int(readings.WINDOW.total_seconds() // 60)} minutes"


def exposition(*, multiprocess_dir: str | None = None) -> bytes:
    """The text format Prometheus scrapes. `multiprocess_dir` defaults to
    PROMETHEUS_MULTIPROC_DIR: set, the histogram is read from the workers' files there."""
    registry = CollectorRegistry()
    directory = multiprocess_dir if multiprocess_dir is not None else os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(WEBHOOK_LATENCY)
    registry.register(DatabaseCollector())
    return generate_latest(registry)


def _gauge(name: str, documentation: str, labels: list[str], values: dict[tuple[str, ...], float]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in values.items():
        family.add_metric(list(label_values), value)
    return family


def _by(values: dict[str, int] | dict[tuple[str, str], int]) -> dict[tuple[str, ...], float]:
    return {(key if isinstance(key, tuple) else (key,)): float(value) for key, value in values.items()}


def _receipts(now: datetime) -> Iterator[Metric]:
    yield _gauge(
        "dlr_receipts_recent",
        f"Receipts received {WINDOW_WORDS}, by connection and normalized status.",
        ["connection", "status"],
        _by(readings.receipts_recent(since=now - readings.WINDOW)),
    )
    yield _gauge(
        "dlr_webhooks_refused_recent",
        f"Webhooks refused {WINDOW_WORDS} (whole minutes), by connection and reason "
        "(signature, address, malformed, rate_limited).",
        ["connection", "reason"],
        _by(readings.webhooks_refused_recent(since=now - readings.WINDOW)),
    )


def _outbox(now: datetime) -> Iterator[Metric]:
    state = readings.outbox_state(now=now)
    yield GaugeMetricFamily(
        "dlr_outbox_lag_seconds",
        "Age of the oldest outbox event not yet processed (0: none).",
        value=state["lag_seconds"],
    )
    yield GaugeMetricFamily("dlr_outbox_pending", "Outbox events not yet processed.", value=state["pending"])
    yield GaugeMetricFamily("dlr_outbox_parked", "Outbox events parked after too many failures.", value=state["parked"])


def _decisions(now: datetime) -> Iterator[Metric]:
    counts = readings.decisions_recent(since=now - readings.WINDOW)
    yield _gauge("dlr_decisions_recent", f"Decisions taken {WINDOW_WORDS}, by outcome.", ["outcome"], _by(counts))


def _attempts(now: datetime) -> Iterator[Metric]:
    yield _gauge("dlr_attempts_open", "Attempts waiting to run or running.", ["outcome"], _by(readings.attempts_open()))
    finished = readings.attempts_finished(since=now - readings.WINDOW)
    yield _gauge(
        "dlr_attempts_finished_recent", f"Attempts ended {WINDOW_WORDS}, by outcome.", ["outcome"], _by(finished)
    )
    yield GaugeMetricFamily(
        "dlr_attempts_overdue",
        f"Attempts due more than {int(readings.OVERDUE_AFTER.total_seconds())} s ago and not run.",
        value=readings.attempts_overdue(now=now),
    )


def _feed(now: datetime) -> Iterator[Metric]:
    state = readings.feed_state(since=now - readings.WINDOW)
    yield _gauge(
        "dlr_feed_deliveries_recent",
        f"Product feed POSTs {WINDOW_WORDS}, by outcome (delivered: a 2xx answer).",
        ["outcome"],
        _by(state["posts"]),
    )
    yield _gauge(
        "dlr_feed_backlog", "Product feed deliveries still to deliver, by status.", ["status"], _by(state["backlog"])
    )


def _beat(now: datetime) -> Iterator[Metric]:
    last = readings.beat_last_run()
    yield GaugeMetricFamily(
        "dlr_beat_last_run_age_seconds",
        "Seconds since Celery beat last recorded running a periodic task (+Inf: never).",
        value=(now - last).total_seconds() if last else math.inf,
    )


def _alerts(now: datetime) -> Iterator[Metric]:
    yield _gauge("dlr_alerts_open", "Alerts not yet acknowledged, by source.", ["source"], _by(readings.open_alerts()))


READINGS: dict[str, Callable[[datetime], Iterable[Metric]]] = {
    "receipts": _receipts,
    "outbox": _outbox,
    "decisions": _decisions,
    "attempts": _attempts,
    "feed": _feed,
    "beat": _beat,
    "alerts": _alerts,
}


class DatabaseCollector(Collector):
    """Every reading in its own transaction with a statement timeout: one that fails (a
    timeout, the database away) leaves its metrics out of this scrape and says so in
    dlr_metrics_reading_up, while the others are still reported."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        up = GaugeMetricFamily(
            "dlr_metrics_reading_up", "1 if this scrape read the part, 0 if it failed.", labels=["part"]
        )
        for part, read in READINGS.items():
            try:
                with transaction.atomic():
                    _limit_statement_time()
                    families = list(read(now))
            except DatabaseError:
                logger.warning("metrics: reading %s failed", part, exc_info=True)
                up.add_metric([part], 0)
                continue
            up.add_metric([part], 1)
            yield from families
        yield up


def _limit_statement_time() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # SET LOCAL: until this reading's transaction ends; a parameter cannot be bound here.
            cursor.execute(f"SET LOCAL statement_timeout = {int(QUERY_TIMEOUT_MS)}")
