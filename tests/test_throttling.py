"""API throttling: per user and per scope, counted in the shared cache (real Redis here), 429
with Retry-After over the rate, documented in the schema; a cache outage lets requests by."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from dlrconsole import roles
from tests.factories import ConnectionFactory, api_client_for, api_key_for, user_in_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def counters(settings):
    """Counters of this test alone: a key prefix of its own in the same Redis."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}
    settings.DLR_API_THROTTLE_RATES = {"read": "3/minute", "write": "2/minute"}


def registration(connection, n: int) -> dict[str, str]:
    return {"connection": connection.slug, "provider_message_id": f"SM-{n}", "to": "+33612345678"}


def test_reads_over_the_rate_get_429_with_retry_after(counters):
    api = api_client_for(user_in_role(roles.VIEWER))
    assert [api.get("/api/v1/messages/").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get("/api/v1/messages/")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith("Request was throttled.")


def test_each_user_and_each_scope_has_its_own_count(counters):
    product = user_in_role(roles.PRODUCT, "backend")
    api = api_client_for(product)
    connection = ConnectionFactory()
    for _ in range(3):
        api.get("/api/v1/messages/")
    assert api.get("/api/v1/messages/").status_code == 429
    assert [api.post("/api/v1/messages/", registration(connection, n)).status_code for n in range(3)] == [201, 201, 429]
    assert api_client_for(user_in_role(roles.VIEWER)).get("/api/v1/messages/").status_code == 200


def test_every_key_of_a_user_shares_the_users_count(counters):
    user = user_in_role(roles.VIEWER)
    for _ in range(3):
        api_client_for(user).get("/api/v1/messages/")
    fresh_key = APIClient(HTTP_AUTHORIZATION=f"Api-Key {api_key_for(user)}")
    assert fresh_key.get("/api/v1/messages/").status_code == 429


def test_anonymous_callers_are_refused_before_anything_is_counted(counters):
    for _ in range(5):
        assert APIClient().get("/api/v1/messages/").status_code == 401


def test_a_cache_outage_lets_requests_through(settings):
    settings.DLR_API_THROTTLE_RATES = {"read": "1/minute", "write": "1/minute"}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    api = api_client_for(user_in_role(roles.VIEWER))
    assert [api.get("/api/v1/messages/").status_code for _ in range(3)] == [200, 200, 200]


def test_the_schema_documents_429_with_retry_after_on_every_api_operation():
    schema = api_client_for(user_in_role(roles.VIEWER)).get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    operations = [op for path, ops in schema["paths"].items() if path.startswith("/api/") for op in ops.values()]
    assert operations
    for operation in operations:
        assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_rates_come_from_the_environment():
    from tests.settings_probe import PRODUCTION, settings_with

    env = {**PRODUCTION, "DLR_API_READ_RATE": "10/second", "DLR_API_WRITE_RATE": "5/minute"}
    assert settings_with(env, "s.DLR_API_THROTTLE_RATES") == "{'read': '10/second', 'write': '5/minute'}"
