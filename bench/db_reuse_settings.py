"""What if the Celery worker kept its database connections between tasks? An experiment for
bench/decision_latency.py, not the project's configuration:

    .venv/bin/python bench/decision_latency.py --worker-settings bench.db_reuse_settings

Celery's Django fixup closes every database connection before and after each task unless
CELERY_DB_REUSE_MAX is set, whatever CONN_MAX_AGE says, so each task opens a new PostgreSQL
session (a new backend process). With this setting it closes them only every 1000 tasks.
"""

from dlrconsole.settings import *  # noqa: F403

CELERY_DB_REUSE_MAX = 1000
