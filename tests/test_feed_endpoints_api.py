"""A product team manages its own feed endpoints through the API: create (the secret shown
once), list and read (never the secret), rotate the secret with a grace period, pause and
resume, replay a delivery; another owner's endpoint is a 404, an admin's a 403 with the reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from dlrconsole import roles
from dlrconsole.audit.models import AuditEntry
from dlrconsole.lib.standard_webhooks import signature_matches
from retries.feed.models import FeedAttempt, FeedDelivery, ProductEndpoint
from retries.feed.services import feed_deliver_due, feed_publish
from tests.factories import GENERIC_SECRET, MessageFactory, api_client_for, user_in_role

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/feed/endpoints/"
DELIVERIES = "/api/v1/feed/deliveries/"


@pytest.fixture
def team():
    user = user_in_role(roles.PRODUCT, "team-a")
    return user, api_client_for(user)


@pytest.fixture
def other_team() -> APIClient:
    return api_client_for(user_in_role(roles.PRODUCT, "team-b"))


def create(client: APIClient, url: str = "http://127.0.0.1:9/feed", **fields):
    return client.post(ENDPOINTS, {"name": "orders", "url": url, **fields}, format="json")


def test_creating_an_endpoint_shows_its_generated_secret_once(team):
    user, client = team
    response = create(client, event_types=["message.failed"])
    assert response.status_code == 201, response.content
    body = response.json()
    endpoint = ProductEndpoint.objects.get(pk=body["id"])
    assert body["secret"] == endpoint.secret
    assert body["secret"].startswith("whsec_")
    assert (endpoint.owner, endpoint.event_types, body["owned"]) == (user, ["message.failed"], True)
    assert body["secret_hint"] == "…" + endpoint.secret[-4:]
    # Never again: not in the list, not in the record.
    for page in (client.get(ENDPOINTS), client.get(f"{ENDPOINTS}{endpoint.pk}/")):
        assert page.status_code == 200
        assert endpoint.secret[6:-4] not in page.content.decode()
        assert "secret" not in (page.json()["results"][0] if "results" in page.json() else page.json())


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"url": "http://169.254.169.254/latest"}, "url", "link-local"),
        ({"url": "http://10.0.0.5/feed"}, "url", "private"),
        ({"url": "ftp://example.com/feed"}, "url", "http:// or https://"),
        ({"name": "   "}, "name", "blank"),
        ({"event_types": ["message.sent"]}, "event_types", "not a valid choice"),
        ({"event_types": ["message.failed", "message.failed"]}, "event_types", "once"),
    ],
    ids=["metadata-address", "private-address", "not-http", "blank-name", "unknown-event", "repeated-event"],
)
def test_creating_refuses_bad_input_with_the_reason_and_stores_nothing(team, fields, field, reason):
    _, client = team
    response = client.post(ENDPOINTS, {"name": "orders", "url": "http://127.0.0.1:9/feed", **fields}, format="json")
    assert response.status_code == 400
    assert reason in str(response.json()[field])
    assert not ProductEndpoint.objects.exists()


def test_another_owners_endpoint_is_not_found(team, other_team):
    _, client = team
    endpoint_id = create(client).json()["id"]
    assert other_team.get(f"{ENDPOINTS}{endpoint_id}/").status_code == 404
    assert other_team.get(ENDPOINTS).json()["results"] == []
    for action in ("rotate-secret", "pause", "resume"):
        assert other_team.post(f"{ENDPOINTS}{endpoint_id}/{action}/", {}, format="json").status_code == 404


def test_an_endpoint_configured_by_an_admin_is_read_but_not_managed_by_a_product_key(team):
    _, client = team
    admins = ProductEndpoint.objects.create(name="legacy", url="http://127.0.0.1:9/x", secret=GENERIC_SECRET)
    assert client.get(f"{ENDPOINTS}{admins.pk}/").json()["owned"] is False
    response = client.post(f"{ENDPOINTS}{admins.pk}/pause/")
    assert response.status_code == 403
    assert "configured by an admin" in response.json()["detail"]
    admins.refresh_from_db()
    assert admins.paused_at is None


def test_admins_manage_every_endpoint():
    admin = api_client_for(user_in_role(roles.ADMIN, "an-admin"))
    team_a = api_client_for(user_in_role(roles.PRODUCT, "team-a"))
    endpoint_id = create(team_a).json()["id"]
    assert admin.post(f"{ENDPOINTS}{endpoint_id}/pause/").json()["paused"] is True


def test_a_viewer_can_neither_read_nor_create_endpoints():
    viewer = api_client_for(user_in_role(roles.VIEWER, "a-viewer"))
    assert viewer.get(ENDPOINTS).status_code == 403
    assert create(viewer).status_code == 403


def test_rotating_signs_with_both_secrets_during_the_grace_period_then_the_new_one_only(team, product):
    _, client = team
    created = create(client, url=product.url).json()
    old = created["secret"]
    response = client.post(f"{ENDPOINTS}{created['id']}/rotate-secret/", {"keep_previous_seconds": 3600}, format="json")
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != old
    assert new.startswith("whsec_")
    assert response.json()["previous_secret_expires_at"]
    assert new not in client.get(f"{ENDPOINTS}{created['id']}/").content.decode()

    feed_publish(message=MessageFactory(), event_type="message.delivered")
    assert feed_deliver_due(timezone.now(), 10) == 1
    feed_publish(message=MessageFactory(), event_type="message.delivered")
    assert feed_deliver_due(timezone.now() + timedelta(hours=2), 10) == 1
    within, after = product.received
    for received, old_accepted in ((within, True), (after, False)):
        headers = received.headers
        signed = {
            "msg_id": headers["webhook-id"],
            "timestamp": int(headers["webhook-timestamp"]),
            "body": received.body,
        }
        assert signature_matches(secret=new, header=headers["webhook-signature"], **signed)
        assert signature_matches(secret=old, header=headers["webhook-signature"], **signed) is old_accepted


def test_rotating_without_grace_drops_the_old_secret_at_once(team):
    _, client = team
    created = create(client).json()
    response = client.post(f"{ENDPOINTS}{created['id']}/rotate-secret/", {"keep_previous_seconds": 0}, format="json")
    assert response.status_code == 200
    endpoint = ProductEndpoint.objects.get(pk=created["id"])
    assert endpoint.signing_secrets(timezone.now()) == [response.json()["secret"]]


def test_rotating_refuses_a_grace_period_beyond_a_week(team):
    _, client = team
    created = create(client).json()
    response = client.post(
        f"{ENDPOINTS}{created['id']}/rotate-secret/", {"keep_previous_seconds": 8 * 86400}, format="json"
    )
    assert response.status_code == 400
    assert "keep_previous_seconds" in response.json()
    assert ProductEndpoint.objects.get(pk=created["id"]).secret == created["secret"]


def test_a_rotation_is_audited_without_the_secret(team):
    _, client = team
    created = create(client).json()
    client.post(f"{ENDPOINTS}{created['id']}/rotate-secret/", {}, format="json")
    entry = AuditEntry.objects.filter(model="feed.productendpoint", action="changed").get()
    assert entry.username == "team-a"
    assert created["secret"][6:-4] not in str(entry.changes)
    assert {"secret": True}.items() <= next(c for c in entry.changes if c["field"] == "secret").items()


def test_a_paused_endpoint_holds_its_deliveries_and_resuming_sends_them(team, product):
    _, client = team
    created = create(client, url=product.url).json()
    paused = client.post(f"{ENDPOINTS}{created['id']}/pause/")
    assert (paused.status_code, paused.json()["paused"]) == (200, True)
    feed_publish(message=MessageFactory(), event_type="message.delivered")
    assert feed_deliver_due(timezone.now(), 10) == 0
    assert product.received == []
    assert FeedDelivery.objects.get().status == "pending"  # held, not lost
    resumed = client.post(f"{ENDPOINTS}{created['id']}/resume/")
    assert (resumed.status_code, resumed.json()["paused"]) == (200, False)
    assert feed_deliver_due(timezone.now(), 10) == 1
    assert len(product.received) == 1


def test_resuming_enables_an_endpoint_the_feed_disabled(team):
    _, client = team
    created = create(client).json()
    ProductEndpoint.objects.filter(pk=created["id"]).update(enabled=False, disabled_reason="410 Gone")
    body = client.post(f"{ENDPOINTS}{created['id']}/resume/").json()
    assert (body["enabled"], body["disabled_reason"]) == (True, "")


def delivered_once(endpoint_id: int) -> FeedDelivery:
    feed_publish(message=MessageFactory(), event_type="message.delivered")
    delivery = FeedDelivery.objects.get(endpoint_id=endpoint_id)
    FeedDelivery.objects.filter(pk=delivery.pk).update(status="delivered", attempts=10, next_attempt_at=None)
    return delivery


def test_replaying_a_delivery_sends_it_again_under_the_same_webhook_id_and_is_audited(team, product):
    _, client = team
    created = create(client, url=product.url).json()
    delivery = delivered_once(created["id"])
    response = client.post(f"{DELIVERIES}{delivery.pk}/replay/")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    product.fail_first(1)
    now = timezone.now()
    feed_deliver_due(now, 10)
    delivery.refresh_from_db()
    # Failed after 10 earlier attempts: the schedule starts again (5 s), rather than abandoning.
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 11, now + timedelta(seconds=5))
    feed_deliver_due(now + timedelta(seconds=5), 10)
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert {r.headers["webhook-id"] for r in product.received} == {delivery.event.webhook_id}
    assert list(FeedAttempt.objects.filter(delivery=delivery).values_list("number", flat=True)) == [11, 12]
    entry = AuditEntry.objects.get(model="feed.feeddelivery")
    assert (entry.username, entry.object_id, entry.changes[0]["old"]) == ("team-a", str(delivery.pk), "delivered")


def test_replaying_another_owners_delivery_is_not_found(team, other_team):
    _, client = team
    delivery = delivered_once(create(client).json()["id"])
    assert other_team.get(f"{DELIVERIES}{delivery.pk}/").status_code == 404
    assert other_team.post(f"{DELIVERIES}{delivery.pk}/replay/").status_code == 404
    assert FeedDelivery.objects.get(pk=delivery.pk).status == "delivered"
    assert not AuditEntry.objects.filter(model="feed.feeddelivery").exists()


def test_replaying_to_a_disabled_endpoint_says_to_resume_it_first(team):
    _, client = team
    created = create(client).json()
    delivery = delivered_once(created["id"])
    ProductEndpoint.objects.filter(pk=created["id"]).update(enabled=False, disabled_reason="410 Gone")
    response = client.post(f"{DELIVERIES}{delivery.pk}/replay/")
    assert response.status_code == 409
    assert "resume it first" in response.json()["detail"]
    assert FeedDelivery.objects.get(pk=delivery.pk).status == "delivered"
