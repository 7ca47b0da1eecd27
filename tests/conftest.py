"""Suite-wide fixtures. The suite needs real PostgreSQL and Redis and says so loudly."""

from __future__ import annotations

import os

import psycopg
import pytest
import redis
from django.conf import settings


def pytest_configure(config: pytest.Config) -> None:
    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"] or None,
            password=db["PASSWORD"] or None, dbname="postgres", connect_timeout=3,
        ).close()
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL is unreachable: set DATABASE_URL to a reachable server ({exc})", returncode=3)
    try:
        redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis is unreachable: set REDIS_URL to a reachable server ({exc})", returncode=3)


@pytest.fixture
def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.flushdb()
    return client
