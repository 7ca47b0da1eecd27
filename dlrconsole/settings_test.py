"""Settings for the test suite: real PostgreSQL and real Redis, never the SQLite demo."""

from __future__ import annotations

import ipaddress
import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dlrconsole")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Under pytest-xdist (`make test` runs two workers) each worker has its own test database
# (pytest-django) and its own Redis database: gw0 keeps REDIS_URL's, gw1 the next one (16
# numbers, wrapping). Written back to the environment, once, so the Celery workers and servers
# some tests start use the same one.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _xdist_worker.startswith("gw") and not os.environ.get("DLR_TEST_REDIS_FOR"):
    _base, _, _number = os.environ["REDIS_URL"].rpartition("/")
    _offset = int(_xdist_worker[2:])
    os.environ["REDIS_URL"] = f"{_base}/{(int(_number or 0) + _offset) % 16}"
    os.environ["DLR_TEST_REDIS_FOR"] = _xdist_worker
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
# Keys for the tests only, set in the environment so that the worker processes some tests start
# read the same ones.
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-never-used-anywhere-else-0123456789")
os.environ.setdefault("DLR_SECRETS_KEYS", "dGVzdHMtb25seS1zZWNyZXRzLWtleS0wMTIzNDU2Nzg=")
# The suite talks plain HTTP to its own servers on loopback.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from dlrconsole.queues import declared_queues  # noqa: E402
from dlrconsole.settings import *  # noqa: F403, E402  (after the environment above is set)
from dlrconsole.settings import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError(
        "The test suite runs on PostgreSQL only: set DATABASE_URL to a postgres:// URL "
        f"(got engine {DATABASES['default']['ENGINE']})"
    )

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed: tests only
CELERY_TASK_DEFAULT_QUEUE = "dlrconsole-test"
CELERY_TASK_QUEUES = declared_queues(CELERY_TASK_DEFAULT_QUEUE)
# A worker started with its embedded beat (tests/worker.py) runs every periodic task each
# second, so end-to-end tests wait seconds, not the production intervals. The database
# scheduler wakes at most every 5 s, so that beat keeps its schedule in a file
# (tests/test_beat.py checks the production scheduler installs the schedule).
CELERY_BEAT_SCHEDULER = "celery.beat:PersistentScheduler"
CELERY_BEAT_SCHEDULE = {name: {**entry, "schedule": 1.0} for name, entry in CELERY_BEAT_SCHEDULE.items()}  # noqa: F405
# Tests change rules with queryset updates too (no signals): every decision reads them afresh;
# tests/test_rule_cache.py covers the cache itself.
DLR_RULES_CACHE_SECONDS = 0
# Tests change receipts between page loads; tests/test_route_honesty.py covers the trust cache.
DLR_TRUST_CACHE_SECONDS = 0
# Kept for the test (a page costs a fixed number of queries); tests/conftest.py clears them
# before each test, and saving a flow clears them (receipts/flows/apps.py).
DLR_FLOWS_CACHE_SECONDS = 3600
# The tests' peers (send APIs, product endpoints, SNS) are local servers on loopback; the
# outbound guard's own tests take this away to see them refused.
DLR_OUTBOUND_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
# Throttling is tested with its own low rates (tests/test_throttling.py); elsewhere a test may
# call the API as often as it likes.
DLR_API_THROTTLE_RATES = {"read": "100000/minute", "write": "100000/minute"}
# Pages render without a collectstatic step (production's manifest storage needs one; the
# production smoke test runs it).
WHITENOISE_AUTOREFRESH = True  # no collected directory to scan at start
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# The suite commits thousands of small transactions; waiting for each one's WAL flush was a third
# of its time (measured: 66 s → 44 s for tests/console, the API and ingestion) and proves nothing
# a test checks: a crash of the test server is not a test case.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=off"
