"""The feed's delivery log in the API and the admin; secrets never shown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from dlrconsole import roles
from retries.feed.models import FeedAttempt, FeedDelivery, ProductEndpoint
from retries.feed.services import feed_publish
from tests.factories import GENERIC_SECRET, MessageFactory, api_client_for, user_in_role

pytestmark = pytest.mark.django_db

SECRET_BODY = GENERIC_SECRET.removeprefix("whsec_")


@pytest.fixture
def api() -> APIClient:
    return api_client_for(user_in_role(roles.PRODUCT, "product"))


@pytest.fixture
def admin_client_logged_in() -> Client:
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def feed():
    a = ProductEndpoint.objects.create(name="a", url="http://127.0.0.1:9/a", secret=GENERIC_SECRET)
    b = ProductEndpoint.objects.create(name="b", url="http://127.0.0.1:9/b", secret=GENERIC_SECRET)
    m1, m2 = MessageFactory(), MessageFactory()
    feed_publish(message=m1, event_type="message.delivered", payload={})
    feed_publish(message=m2, event_type="message.failed", payload={})
    delivered = FeedDelivery.objects.get(endpoint=a, message=m1)
    delivered.status = "delivered"
    delivered.attempts = 1
    delivered.save()
    FeedAttempt.objects.create(
        delivery=delivered, number=1, attempted_at=timezone.now(), status_code=200, duration_ms=12
    )
    return {"a": a, "b": b, "m1": m1, "m2": m2}


def ids(response) -> set[int]:
    assert response.status_code == 200
    return {row["id"] for row in response.json()["results"]}


def test_deliveries_list_with_log(api, feed):
    rows = api.get("/api/v1/feed/deliveries/").json()["results"]
    assert len(rows) == 4
    row = next(r for r in rows if r["status"] == "delivered")
    assert row["webhook_id"].startswith("evt_")
    assert row["log"][0]["status_code"] == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (lambda f: {"endpoint": f["a"].pk}, lambda f: {("a", "m1"), ("a", "m2")}),
        (lambda f: {"status": "delivered"}, lambda f: {("a", "m1")}),
        (lambda f: {"event_type": "message.failed"}, lambda f: {("a", "m2"), ("b", "m2")}),
        (lambda f: {"message": f["m1"].pk}, lambda f: {("a", "m1"), ("b", "m1")}),
    ],
    ids=["endpoint", "status", "event_type", "message"],
)
def test_delivery_filters(api, feed, query, expected):
    wanted = {FeedDelivery.objects.get(endpoint=feed[e], message=feed[m]).pk for e, m in expected(feed)}
    assert ids(api.get("/api/v1/feed/deliveries/", query(feed))) == wanted


def test_unknown_status_filter_is_a_400(api, feed):
    assert api.get("/api/v1/feed/deliveries/", {"status": "nope"}).status_code == 400


def test_api_needs_authentication(feed):
    assert APIClient().get("/api/v1/feed/deliveries/").status_code in (401, 403)


def test_endpoints_list_never_shows_the_secret(api, feed):
    response = api.get("/api/v1/feed/endpoints/")
    assert response.status_code == 200
    assert SECRET_BODY[:-4] not in response.content.decode()
    assert response.json()["results"][0]["secret_hint"] == "…" + GENERIC_SECRET[-4:]


def test_admin_pages_never_show_the_secret(admin_client_logged_in, feed):
    delivery = FeedDelivery.objects.filter(status="delivered").get()
    pages = [
        "/admin/feed/productendpoint/",
        f"/admin/feed/productendpoint/{feed['a'].pk}/change/",
        "/admin/feed/feeddelivery/",
        f"/admin/feed/feeddelivery/{delivery.pk}/change/",
    ]
    for page in pages:
        response = admin_client_logged_in.get(page)
        assert response.status_code == 200, page
        assert SECRET_BODY[:-4] not in response.content.decode(), page


def test_admin_shows_the_delivery_log(admin_client_logged_in, feed):
    delivery = FeedDelivery.objects.filter(status="delivered").get()
    page = admin_client_logged_in.get(f"/admin/feed/feeddelivery/{delivery.pk}/change/").content.decode()
    assert "200" in page
    assert "12" in page


def test_admin_rejects_a_malformed_secret(admin_client_logged_in):
    response = admin_client_logged_in.post(
        "/admin/feed/productendpoint/add/",
        {"name": "x", "url": "http://127.0.0.1:9/x", "secret": "whsec_short", "event_types": "[]", "enabled": "on"},
    )
    assert response.status_code == 200
    assert not ProductEndpoint.objects.filter(name="x").exists()


def test_admin_reenabling_resumes_pending_deliveries(admin_client_logged_in, feed):
    endpoint = feed["b"]
    ProductEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason="410 Gone")
    far = timezone.now() + timedelta(days=365)
    FeedDelivery.objects.filter(endpoint=endpoint).update(next_attempt_at=far)
    response = admin_client_logged_in.post(
        "/admin/feed/productendpoint/",
        {"action": "enable_endpoints", "_selected_action": [endpoint.pk]},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert endpoint.disabled_reason == ""
    assert all(
        d < far for d in FeedDelivery.objects.filter(endpoint=endpoint).values_list("next_attempt_at", flat=True)
    )


def test_admin_edit_keeps_the_secret_when_left_blank(admin_client_logged_in, feed):
    endpoint = feed["a"]
    response = admin_client_logged_in.post(
        f"/admin/feed/productendpoint/{endpoint.pk}/change/",
        {"name": "renamed", "url": endpoint.url, "secret": "", "event_types": "[]", "enabled": "on"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.secret) == ("renamed", GENERIC_SECRET)
