"""The API's side of decisions: the text is taken at registration and never returned; the
timeline shows decisions, attempts and what the product was told."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from receipts.models import Message, OutboxEvent
from receipts.outbox import outbox_process
from retries.attempts import attempts_run_due
from retries.feed.models import ProductEndpoint
from tests.factories import GENERIC_SECRET, ConnectionFactory, api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return api_client_for(get_user_model().objects.create_superuser("ops", password="x"))


def register(api: APIClient, **fields: str):
    conn = ConnectionFactory(slug="main")
    payload = {"connection": conn.slug, "provider_message_id": "SM1", "to": "+33612345678", **fields}
    return api.post("/api/v1/messages/", payload, format="json")


def test_the_text_and_fallback_address_are_kept_for_retries_but_never_returned(api):
    response = register(api, body="Your code is 424242", fallback_email="user@example.com")
    assert response.status_code == 201
    message = Message.objects.get()
    assert (message.body, message.fallback_email) == ("Your code is 424242", "user@example.com")
    for url in ("/api/v1/messages/", f"/api/v1/messages/{message.pk}/"):
        page = api.get(url).content.decode()
        assert "424242" not in page
        assert "user@example.com" not in page


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [("body", "x" * 1601, "no more than 1600"), ("fallback_email", "not-an-address", "valid email")],
)
def test_an_invalid_text_or_fallback_address_is_a_400_with_the_reason(api, field, value, error):
    response = register(api, **{field: value})
    assert response.status_code == 400
    assert error in str(response.json()[field])
    assert not Message.objects.exists()


def test_the_timeline_shows_the_decision_the_attempt_and_what_the_product_was_told(api, gateway, default_rules):
    register(api, body="hello")
    message = Message.objects.get()
    gateway.configure(message.connection)
    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    Message.objects.filter(pk=message.pk).update(status="undelivered", reason="absent_subscriber",
                                                 error_class="temporary")  # fmt: skip
    outbox_process(OutboxEvent.objects.create(message=message, kind="status_changed", status="undelivered",
                                              created_at=timezone.now()).pk)  # fmt: skip
    attempts_run_due(now=timezone.now() + timedelta(minutes=5))
    timeline = api.get(f"/api/v1/messages/{message.pk}/").json()["timeline"]
    by_kind = {entry["kind"]: entry for entry in timeline}
    assert by_kind["decision"]["detail"]["action"] == "retry_same"
    attempt = by_kind["attempt"]["detail"]
    assert (attempt["outcome"], attempt["through"], attempt["tries"]) == ("succeeded", "main", 1)
    assert attempt["idempotency_key"] == f"retry-of-message-{message.pk}"
    notification = by_kind["notification"]
    assert notification["detail"]["type"] == "message.retry_scheduled"
    assert notification["detail"]["deliveries"][0]["status"] == "pending"
