"""A connection's own rate limit: off by default; when set, authentic requests over it per
second get 429 with Retry-After and store nothing, counted in the shared cache (real Redis)
across processes; forged requests use none of it; a cache outage lets receipts in."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client

from receipts.models import Receipt
from tests.factories import MessageFactory, user_in_role
from tests.webhooks import generic_body, post_status

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


@pytest.fixture
def counters(settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture
def frozen():
    # Mid-second, so the requests of a test fall in one window whatever the clock says.
    start = datetime.now(UTC).replace(microsecond=200_000) + timedelta(days=1)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


def post(client: Client, message, n: int):
    return post_status(client, message, "delivered", provider_message_id=f"{message.provider_message_id}-{n}")


def test_requests_over_the_limit_get_429_with_retry_after_and_store_nothing(client, counters, frozen):
    message = MessageFactory(connection__rate_limit=2)
    answers = [post(client, message, n) for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2]["Retry-After"] == "1"
    assert answers[2].json() == {"error": "over this connection's limit of 2 requests per second"}
    assert Receipt.objects.count() == 2
    frozen.shift(1)
    assert post(client, message, 3).status_code == 200


def test_forged_requests_use_none_of_the_allowance(client, counters, frozen):
    message = MessageFactory(connection__rate_limit=1)
    for _ in range(5):
        forged = client.post(
            f"/hooks/{message.connection.slug}/", data=generic_body("x", "delivered"), content_type="application/json"
        )
        assert forged.status_code == 401
    assert post(client, message, 1).status_code == 200


def test_each_connection_has_its_own_count(client, counters, frozen):
    busy, quiet = MessageFactory(connection__rate_limit=1), MessageFactory(connection__rate_limit=1)
    assert [post(client, busy, n).status_code for n in range(2)] == [200, 429]
    assert post(client, quiet, 1).status_code == 200


def test_without_a_limit_the_cache_is_never_asked(client, settings, caplog):
    settings.CACHES = DEAD_REDIS
    message = MessageFactory()
    with caplog.at_level(logging.WARNING, logger="dlrconsole.lib.rate_limit"):
        assert [post(client, message, n).status_code for n in range(5)] == [200] * 5
    assert not [r for r in caplog.records if r.name == "dlrconsole.lib.rate_limit"]


def test_a_cache_outage_lets_receipts_in(client, settings, caplog):
    settings.CACHES = DEAD_REDIS
    message = MessageFactory(connection__rate_limit=1)
    assert [post(client, message, n).status_code for n in range(3)] == [200] * 3
    assert "rate limit not counted" in caplog.text


def test_the_limit_is_set_in_the_admin_and_audited(counters):
    from dlrconsole import roles
    from dlrconsole.audit.models import AuditEntry

    message = MessageFactory()
    admin = Client()
    admin.force_login(user_in_role(roles.ADMIN, "boss"))
    connection = message.connection
    form = {
        "slug": connection.slug, "provider": connection.provider, "name": "", "public_url": "", "options": "{}",
        "allowed_ips": "[]", "rate_limit": "50", "enabled": "on", "new_secrets": "", "test_mode": "off",
        "prices-TOTAL_FORMS": "0", "prices-INITIAL_FORMS": "0",
    }  # fmt: skip
    response = admin.post(f"/admin/receipts/connection/{connection.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    connection.refresh_from_db()
    assert connection.rate_limit == 50
    entry = AuditEntry.objects.filter(model="receipts.connection", action="changed").get()
    assert {"field": "rate_limit", "label": "rate limit", "old": "", "new": "50"} in entry.changes
    connection.rate_limit = 0
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        connection.full_clean()
