"""The webhook latency histogram, the one metric counted in the request itself.

Everything else /metrics shows is read from the database at scrape time
(dlrconsole/ops/metrics_readings.py). This histogram cannot be: a request's duration is stored
nowhere. Under gunicorn each worker keeps its own counts, so with PROMETHEUS_MULTIPROC_DIR set
(read by prometheus-client when it is first imported) every worker writes them to a file of
that directory and a scrape sums the files (docs/MONITORING.md). The module imports nothing of
Django so that a process can observe without setting it up.
"""

from __future__ import annotations

from prometheus_client import Histogram

# Webhooks take 2 ms on a quiet database (bench/profile_ingest.py); the upper buckets show a
# struggling database well before providers time out (most give up after 5 to 30 s).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# registry=None: the exposition builds its registry per scrape (dlrconsole/ops/metrics.py), from
# this object in a single process or from the workers' files in multiprocess mode.
WEBHOOK_LATENCY = Histogram(
    "dlr_webhook_duration_seconds",
    "Time to answer a provider's webhook, by the connection's provider kind and the HTTP status class.",
    ["kind", "status_class"],
    buckets=BUCKETS,
    registry=None,
)


def observe_webhook(*, kind: str, status: int, seconds: float) -> None:
    WEBHOOK_LATENCY.labels(kind, f"{status // 100}xx").observe(seconds)
