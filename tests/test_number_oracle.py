"""Roles that may not see full numbers may not search by one: every answer to a guessed
number (found or not) would unmask the hidden digits, 10^5 guesses for 5 digits. The API,
the console's search and its CSV export refuse it with the reason; nothing else orders,
counts or exports by number for them."""

from __future__ import annotations

import pytest
from django.test import Client

from dlrconsole import roles
from receipts.filters import NUMBER_SEARCH_REFUSED
from tests.factories import MessageFactory, api_client_for, user_in_role

pytestmark = pytest.mark.django_db

NUMBER = "+33612345678"


@pytest.fixture
def message():
    return MessageFactory(recipient=NUMBER, provider_message_id="SM-1", client_reference="order-1")


def console(role: str) -> Client:
    client = Client()
    client.force_login(user_in_role(role))
    return client


@pytest.mark.parametrize(
    "query",
    [{"recipient": NUMBER}, {"recipient": "+33699999999"}, {"q": NUMBER}, {"q": "06 12 34 56 78", "region": "FR"}],
)
def test_the_api_refuses_a_number_search_to_viewers_with_the_reason(message, query):
    response = api_client_for(user_in_role(roles.VIEWER)).get("/api/v1/messages/", query)
    assert response.status_code == 400
    field = next(iter(query))
    assert response.json() == {field: [NUMBER_SEARCH_REFUSED]}


@pytest.mark.parametrize("query", [{"q": "SM-1"}, {"client_reference": "order-1"}, {"country": "FR"}])
def test_viewers_still_search_by_id_reference_and_country(message, query):
    rows = api_client_for(user_in_role(roles.VIEWER)).get("/api/v1/messages/", query).json()["results"]
    assert [row["recipient"] for row in rows] == ["+336•••••678"]


@pytest.mark.parametrize("role", [roles.SUPPORT, roles.PRODUCT])
def test_roles_that_see_numbers_search_by_them(message, role):
    response = api_client_for(user_in_role(role)).get(
        "/api/v1/messages/", {"recipient": "06 12 34 56 78", "region": "FR"}
    )
    assert [row["id"] for row in response.json()["results"]] == [message.pk]


def test_the_console_search_refuses_it_with_a_message_on_the_page(message):
    response = console(roles.VIEWER).get("/console/messages/", {"q": NUMBER})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Searching by phone number needs the permission to see full numbers" in page
    assert "SM-1" not in page
    assert console(roles.SUPPORT).get("/console/messages/", {"q": NUMBER}).status_code == 200


def test_the_export_refuses_it_too(message):
    response = console(roles.VIEWER).get("/console/messages/export.csv", {"recipient": NUMBER})
    assert response.status_code == 400
    assert str(NUMBER_SEARCH_REFUSED) in response.content.decode()
    assert NUMBER not in response.content.decode()


def test_ordering_by_number_is_not_offered(message):
    other = MessageFactory(recipient="+33600000001")
    api = api_client_for(user_in_role(roles.VIEWER))
    plain = [row["id"] for row in api.get("/api/v1/messages/").json()["results"]]
    for ordering in ("recipient", "-recipient"):
        assert [row["id"] for row in api.get("/api/v1/messages/", {"ordering": ordering}).json()["results"]] == plain
    assert plain == [other.pk, message.pk]


def test_the_message_admin_masks_and_never_searches_numbers_without_the_permission(message):
    from django.contrib.auth.models import Permission

    from tests.webhooks import post_status

    assert post_status(Client(), message, "delivered", to=NUMBER).status_code == 200
    inspector = user_in_role(roles.VIEWER, "inspector")
    inspector.is_staff = True
    inspector.save()
    inspector.user_permissions.add(*Permission.objects.filter(codename__in=["view_message", "view_receipt"]))
    client = Client()
    client.force_login(inspector)
    for page in [
        "/admin/receipts/message/",
        f"/admin/receipts/message/{message.pk}/change/",
        f"/admin/receipts/receipt/{message.receipts.get().pk}/change/",
    ]:
        response = client.get(page)
        assert response.status_code == 200
        assert "12345" not in response.content.decode(), page
    assert "+336•••••678" in client.get("/admin/receipts/message/").content.decode()
    assert "0 results" in client.get("/admin/receipts/message/", {"q": NUMBER}).content.decode()
