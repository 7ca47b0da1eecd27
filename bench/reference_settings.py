"""The project's settings with the reference URLconf: same apps, middleware, database and
logging, so the benchmark's ratio measures the webhook code path and nothing else."""

from dlrconsole.settings import *  # noqa: F403

ROOT_URLCONF = "bench.reference_app.urls"
