"""Each API action needs its capability (dlrconsole/roles.py), tested per role; numbers are
masked for callers who may not see them, in timelines' raw payloads too."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.test import APIClient

from dlrconsole import roles
from retries.feed.models import FeedDelivery, ProductEndpoint
from retries.feed.services import feed_publish
from tests.factories import GENERIC_SECRET, ConnectionFactory, MessageFactory, api_client_for, user_in_role
from tests.webhooks import generic_body, generic_headers

pytestmark = pytest.mark.django_db

NUMBER = "+33612345678"
NONE = "no-role"  # signed in, in no group
SUPERUSER = "superuser"


def caller(role: str) -> APIClient:
    if role == NONE:
        return api_client_for(get_user_model().objects.create_user("nobody"))
    if role == SUPERUSER:
        return api_client_for(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    return api_client_for(user_in_role(role))


@pytest.fixture
def records():
    message = MessageFactory(recipient=NUMBER)
    endpoint = ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    feed_publish(message=message, event_type="message.delivered", payload={})
    return {"message": message, "endpoint": endpoint, "delivery": FeedDelivery.objects.get()}


def registration(connection) -> dict[str, str]:
    return {"connection": connection.slug, "provider_message_id": "SM-1", "to": NUMBER, "flow": "login-otp"}


ALLOWED = {
    "search": {roles.VIEWER, roles.SUPPORT, roles.ADMIN, roles.PRODUCT, SUPERUSER},
    "timeline": {roles.SUPPORT, roles.ADMIN, roles.PRODUCT, SUPERUSER},
    "register": {roles.PRODUCT, SUPERUSER},
    "feed": {roles.ADMIN, roles.PRODUCT, SUPERUSER},
}
CALLERS = [roles.VIEWER, roles.SUPPORT, roles.ADMIN, roles.PRODUCT, NONE, SUPERUSER]


@pytest.mark.parametrize("role", CALLERS)
def test_searching_messages_needs_the_console(role, records):
    response = caller(role).get("/api/v1/messages/")
    assert response.status_code == (200 if role in ALLOWED["search"] else 403)


@pytest.mark.parametrize("role", CALLERS)
def test_describing_the_messages_endpoint_needs_what_searching_needs(role, records):
    response = caller(role).options("/api/v1/messages/")
    assert response.status_code == (200 if role in ALLOWED["search"] else 403)


@pytest.mark.parametrize("role", CALLERS)
def test_a_timeline_needs_the_timeline_permission(role, records):
    response = caller(role).get(f"/api/v1/messages/{records['message'].pk}/")
    assert response.status_code == (200 if role in ALLOWED["timeline"] else 403)


@pytest.mark.parametrize("role", CALLERS)
def test_registering_is_the_products(role):
    response = caller(role).post("/api/v1/messages/", registration(ConnectionFactory()), format="json")
    assert response.status_code == (201 if role in ALLOWED["register"] else 403)


@pytest.mark.parametrize("role", CALLERS)
@pytest.mark.parametrize("path", ["deliveries/", "deliveries/{delivery}/", "endpoints/", "endpoints/{endpoint}/"])
def test_the_feed_api_is_the_products_and_the_admins(role, path, records):
    url = "/api/v1/feed/" + path.format(delivery=records["delivery"].pk, endpoint=records["endpoint"].pk)
    assert caller(role).get(url).status_code == (200 if role in ALLOWED["feed"] else 403)


@pytest.mark.parametrize(
    "url", ["/api/v1/", "/api/v1/messages/", "/api/v1/messages/1/", "/api/v1/feed/", "/api/v1/feed/deliveries/"]
)
def test_anonymous_callers_are_asked_for_a_key(url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"


def test_an_unknown_method_is_still_405_not_403(records):
    response = caller(roles.VIEWER).delete(f"/api/v1/messages/{records['message'].pk}/")
    assert response.status_code == 405


def test_console_sessions_get_the_same_answers(records):
    client = Client()
    client.force_login(user_in_role(roles.VIEWER))
    assert client.get("/api/v1/messages/").status_code == 200
    assert client.get(f"/api/v1/messages/{records['message'].pk}/").status_code == 403


def test_viewers_see_masked_numbers_in_search_results(records):
    rows = caller(roles.VIEWER).get("/api/v1/messages/").json()["results"]
    assert [row["recipient"] for row in rows] == ["+336•••••678"]


def test_support_sees_full_numbers(records):
    rows = caller(roles.SUPPORT).get("/api/v1/messages/").json()["results"]
    assert [row["recipient"] for row in rows] == [NUMBER]


def test_a_registration_answer_is_masked_without_the_numbers_permission():
    user = get_user_model().objects.create_user("registrar")
    user.user_permissions.add(Permission.objects.get(codename="add_message"))
    response = api_client_for(user).post("/api/v1/messages/", registration(ConnectionFactory()), format="json")
    assert response.status_code == 201
    assert response.json()["recipient"] == "+336•••••678"


def test_a_timeline_without_the_numbers_permission_masks_them_in_raw_payloads(client):
    message = MessageFactory(recipient=NUMBER)
    body = generic_body(message.provider_message_id, "delivered", to="33612345678", recipient=NUMBER)
    headers = generic_headers(message.connection, body)
    client.post(
        f"/hooks/{message.connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )
    user = get_user_model().objects.create_user("timeline-only")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["use_console", "view_timeline"]))

    masked = api_client_for(user).get(f"/api/v1/messages/{message.pk}/")
    full = caller(roles.SUPPORT).get(f"/api/v1/messages/{message.pk}/")

    assert masked.status_code == full.status_code == 200
    assert "12345" not in masked.content.decode()
    assert masked.json()["recipient"] == "+336•••••678"
    raw = masked.json()["timeline"][1]["detail"]["raw_body"]
    assert '"+336•••••678"' in raw
    assert '"336•••••678"' in raw
    assert NUMBER in full.json()["timeline"][1]["detail"]["raw_body"]


def test_masking_covers_every_spelling_providers_use_and_leaves_other_digits():
    from receipts.phones import mask_number_in

    payload = {
        "to": NUMBER,
        "form": "To=%2B33612345678&From=%2B15005550006",
        "msisdn": "33612345678",
        "national": "0612345678",
        "nested": [{"dest": "0033612345678"}],
        "id": "SM1700000000",
        "count": 3,
    }
    masked = mask_number_in(payload, NUMBER)
    assert "12345" not in repr(masked)
    assert masked["form"] == "To=%2B336•••••678&From=%2B15005550006"
    assert (masked["id"], masked["count"]) == ("SM1700000000", 3)
