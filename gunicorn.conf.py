"""gunicorn's settings for DLR Console (`gunicorn dlrconsole.wsgi --config gunicorn.conf.py`,
as the Procfile and deploy/systemd/dlrconsole-web.service run it). Each is read from the
environment with a default that suits a host of 2 to 8 cores behind a TLS proxy on the same
host (docs/OPERATIONS.md)."""

from __future__ import annotations

import glob
import os

from gunicorn.glogging import Logger

_env = os.environ.get

# Where to listen: GUNICORN_BIND (e.g. 127.0.0.1:8000 or unix:/run/dlrconsole/web.sock); a
# platform that sets PORT routes to every interface.
bind = [_env("GUNICORN_BIND") or (f"0.0.0.0:{_env('PORT')}" if _env("PORT") else "127.0.0.1:8000")]

# Threads, not one request per process: a CSV export streams for as long as the search is
# long (dlrconsole/console/export.py), and gthread's main loop keeps telling the arbiter the
# worker is alive while a thread streams, so `timeout` never kills a long export (a sync
# worker would be killed `timeout` seconds into it). A slow reader holds one thread, not a
# process. Each thread keeps its own PostgreSQL connection (DB_CONN_MAX_AGE): workers x
# threads per host, well within max_connections for a few hosts.
worker_class = "gthread"
workers = int(_env("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1))
threads = int(_env("GUNICORN_THREADS") or 4)
# A worker whose main loop is silent this long is stuck (not busy: threads stream): killed.
timeout = int(_env("GUNICORN_TIMEOUT") or 30)
# A restart (HUP, a deploy) lets requests in flight finish for this long, exports included;
# longer exports are cut (the person downloads again).
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT") or 60)
# Connections from the proxy on the same host are kept a little between requests.
keepalive = int(_env("GUNICORN_KEEPALIVE") or 5)

# Workers are replaced after this many requests (plus up to the jitter, so they are not all
# replaced at once): whatever a long-lived process accumulates is returned. Not often: a new
# worker imports the project again and opens new database connections, about a second of CPU.
# At 5,000 a webhook host taking 300 receipts/s replaced a worker every 17 s, a few per cent
# of the machine (bench/decision_latency.py, 2026-12-07).
max_requests = int(_env("GUNICORN_MAX_REQUESTS") or 100_000)
max_requests_jitter = int(_env("GUNICORN_MAX_REQUESTS_JITTER") or 10_000)

# Whose X-Forwarded-Proto/-For gunicorn believes: FORWARDED_ALLOW_IPS, else the proxies the
# console trusts (DLR_TRUSTED_PROXIES, CIDRs), else loopback. Django decides HTTPS and the
# caller's address itself (BEHIND_TLS_PROXY, DLR_TRUSTED_PROXIES); this keeps gunicorn's own
# view the same.
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS") or _env("DLR_TRUSTED_PROXIES") or "127.0.0.1,::1"

# No access log here: paths carry webhook tokens (/hooks/<slug>/<token>/) and searches' query
# strings carry phone numbers, and gunicorn's access log bypasses the console's redacting
# filter. The proxy's log, or the console's own lines, say what was asked.
accesslog = None
errorlog = "-"


class NoAccessLog(Logger):
    """gunicorn's logger without its access log. gunicorn builds each request's access-log
    fields whenever a logging configuration is given (ours is, below), even with no access log
    to write them to: 5 % of a web worker's Python time under webhook load
    (bench/decision_latency.py, 2026-12-07). Never logging access also means no handler added
    later can start writing tokens and numbers."""

    def access(self, resp: object, req: object, environ: object, request_time: object) -> None:
        return None


logger_class = NoAccessLog
loglevel = (_env("LOG_LEVEL") or "info").lower()
# gunicorn's own lines (start, worker restarts, timeouts) in the console's format.
if (_env("LOG_FORMAT") or "json") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        # gunicorn's defaults name both handlers (its root logger uses `console`).
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def on_starting(server: object) -> None:
    """Prometheus' multiprocess directory starts empty: a previous run's files would be summed
    into this one's histograms (docs/MONITORING.md)."""
    directory = _env("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for leftover in glob.glob(os.path.join(directory, "*.db")):
            os.remove(leftover)


def child_exit(server: object, worker: object) -> None:
    """A dead worker's live gauges leave the sums; its histogram observations stay counted."""
    if _env("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
