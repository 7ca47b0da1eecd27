"""Liveness apart from readiness: /healthz is the process alone; /readyz checks the database,
Redis, a worker seen recently and beat, and says only "ok" or "failing" for each."""

from __future__ import annotations

import logging
import time

import pytest
from django.core.cache import cache

from dlrconsole.ops.heartbeats import BEAT_SEEN_KEY, WORKER_SEEN_KEY, last_seen, seen_now
from tests.worker import celery_worker, wait_until


@pytest.fixture
def heartbeats():
    """Both heartbeats fresh; the test takes away or ages what it needs."""
    seen_now(WORKER_SEEN_KEY)
    seen_now(BEAT_SEEN_KEY)
    yield
    cache.delete_many([WORKER_SEEN_KEY, BEAT_SEEN_KEY])


def test_liveness_answers_without_touching_the_database(client):
    # No django_db mark: any query would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_ready_when_the_database_redis_a_worker_and_beat_all_answer(client, heartbeats):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "worker": "ok", "beat": "ok"},
    }


@pytest.mark.django_db
def test_not_ready_without_a_worker_seen_recently_and_says_only_which_check_fails(client, heartbeats, settings):
    cache.set(WORKER_SEEN_KEY, time.time() - settings.DLR_READY_WORKER_MAX_AGE_SECONDS - 1)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "failing",
        "checks": {"database": "ok", "redis": "ok", "worker": "failing", "beat": "ok"},
    }


@pytest.mark.django_db
def test_not_ready_when_beat_was_never_seen_which_is_a_warning_not_a_server_error(client, heartbeats, caplog):
    cache.delete(BEAT_SEEN_KEY)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["beat"] == "failing"
    assert ("dlrconsole.ops.health", logging.WARNING, "not ready: beat") in caplog.record_tuples
    assert not [r for r in caplog.records if r.name == "django.request"]  # nothing mailed to ADMINS


@pytest.mark.django_db
def test_where_tasks_run_in_process_there_is_no_worker_or_beat_to_check(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.django_db
def test_health_pages_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in {200, 503}
    assert client.get("/login/").status_code == 301


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_says_it_is_alive():
    cache.delete(WORKER_SEEN_KEY)
    started = time.time()
    with celery_worker():
        assert wait_until(lambda: (last_seen(WORKER_SEEN_KEY) or 0) >= started, timeout=20)
