"""Suite-wide fixtures. The suite needs real PostgreSQL and Redis and says so loudly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import redis
import time_machine
from django.conf import settings
from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import LiveServerThread, _StaticFilesHandler

from tests.product_endpoint import ProductEndpointServer, serve_product
from tests.send_api import FakeGateway


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift-days",
        type=int,
        default=0,
        help="run every test with the clock moved this many days from today (CI: 365), so a test that "
        "mixes a fixed date with rows stamped by the real clock fails today rather than on a later day",
    )
    parser.addoption(
        "--clock-shift-dated",
        action="store_true",
        help="with --clock-shift-days, move the clock only for the modules that write a fixed time "
        "(tests/dated.py); every other test runs on today's clock",
    )


@pytest.fixture(autouse=True)
def _shifted_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    days = request.config.getoption("clock_shift_days")
    if days and request.config.getoption("clock_shift_dated"):
        from tests.dated import is_dated

        # Only modules that write a fixed time can depend on the day; the slow end-to-end tests
        # hand the clock to worker processes time-machine does not move.
        if request.node.get_closest_marker("slow") or not is_dated(request.node.path.resolve()):
            days = 0
    if not days:
        yield
        return
    # The clock keeps ticking: only the day changes. A test's own time_machine travel nests inside.
    with time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True):
        yield


def pytest_configure(config: pytest.Config) -> None:
    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"] or None,
            port=db["PORT"] or None,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL is unreachable: set DATABASE_URL to a reachable server ({exc})", returncode=3)
    try:
        redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis is unreachable: set REDIS_URL to a reachable server ({exc})", returncode=3)


@pytest.fixture(autouse=True)
def _forget_flows() -> None:
    """The flows' per-process cache (receipts/flows/selectors.py) keeps no row of a test rolled back."""
    from receipts.flows.selectors import clear_caches

    clear_caches()


@pytest.fixture(autouse=True)
def _default_language() -> None:
    """Each test starts in the default language: a page request leaves its own active in the
    thread (LocaleMiddleware activates one per request, as production does), and a test that
    then calls code directly would read the previous test's language."""
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(scope="session", autouse=True)
def _stop_outbox_publisher(django_db_setup: None) -> Iterator[None]:
    """Torn down before the test database: the publisher thread holds a connection to it."""
    yield
    from receipts.outbox import publisher

    publisher.stop(timeout=10)


@pytest.fixture
def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.flushdb()
    return client


class _WideBacklogServer(ThreadedWSGIServer):
    # socketserver's default backlog of 5 resets connections when 50 clients connect at once;
    # a production server (gunicorn: 2048) would queue them.
    request_queue_size = 256


class _ServerThread(LiveServerThread):
    server_class = _WideBacklogServer


@pytest.fixture
def http_server(transactional_db: None) -> Iterator[str]:
    """The project served over real HTTP on loopback, one thread (and DB connection) per request."""
    thread = _ServerThread("127.0.0.1", _StaticFilesHandler, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait(10)
    if thread.error:
        raise thread.error
    try:
        yield f"http://127.0.0.1:{thread.port}"
    finally:
        thread.terminate()


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    """A real local SMS gateway (the generic HTTP send API) that honours idempotency keys."""
    server = FakeGateway()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join(timeout=5)


@pytest.fixture
def product() -> Iterator[ProductEndpointServer]:
    with serve_product() as server:
        yield server


@pytest.fixture
def default_rules(db: None) -> None:
    """The shipped rule set. Migrations install it, but a transactional test's flush empties
    every table, so tests that depend on it after one ask for it."""
    from retries.default_rules import install_default_rules
    from retries.models import Rule, Step

    if not Rule.objects.exists():
        install_default_rules(Rule, Step)
