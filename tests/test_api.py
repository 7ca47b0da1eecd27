"""The product's API: registering messages, searching them, reading their timelines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from dlrconsole import roles
from receipts.models import Message
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory, api_client_for, user_in_role
from tests.webhooks import generic_body, generic_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return api_client_for(user_in_role(roles.PRODUCT, "product"))


def registration(conn, **overrides):
    return {
        "connection": conn.slug,
        "provider_message_id": "SM123",
        "to": "+33 6 12 34 56 78",
        "flow": "login-otp",
        "client_reference": "order-42",
        **overrides,
    }


def test_registering_a_message_normalizes_the_number_and_country(api):
    connection = ConnectionFactory()
    response = api.post("/api/v1/messages/", registration(connection), format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["recipient"], body["country"], body["status"]) == ("+33612345678", "FR", "queued")
    assert (body["flow"], body["client_reference"], body["connection"]) == ("login-otp", "order-42", connection.slug)


def test_registering_twice_is_idempotent(api):
    connection = ConnectionFactory()
    first = api.post("/api/v1/messages/", registration(connection), format="json")
    again = api.post("/api/v1/messages/", registration(connection, to="0033612345678"), format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Message.objects.count() == 1


def test_registering_the_same_id_with_another_recipient_is_409(api):
    connection = ConnectionFactory()
    api.post("/api/v1/messages/", registration(connection), format="json")
    response = api.post("/api/v1/messages/", registration(connection, to="+447700900123"), format="json")
    assert response.status_code == 409
    assert Message.objects.get().recipient == "+33612345678"


def test_national_number_needs_and_uses_a_region_hint(api):
    connection = ConnectionFactory()
    without = api.post("/api/v1/messages/", registration(connection, to="06 12 34 56 78"), format="json")
    assert without.status_code == 400
    assert "to" in without.json()
    with_hint = api.post("/api/v1/messages/", registration(connection, to="06 12 34 56 78", region="FR"), format="json")
    assert with_hint.status_code == 201
    assert with_hint.json()["recipient"] == "+33612345678"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", "not a number"),
        ("connection", "missing-connection"),
        ("provider_message_id", "x" * 129),
        ("flow", "has spaces"),
        ("submitted_at", "last tuesday"),
    ],
)
def test_invalid_registration_is_400_naming_the_field(api, field, value):
    connection = ConnectionFactory()
    response = api.post("/api/v1/messages/", registration(connection, **{field: value}), format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Message.objects.exists()


def test_registration_on_a_disabled_connection_is_refused(api):
    connection = ConnectionFactory(enabled=False)
    assert api.post("/api/v1/messages/", registration(connection), format="json").status_code == 400


def test_registration_links_receipts_that_came_first(api, client):
    connection = ConnectionFactory()
    body = generic_body("SM123", "delivered")
    headers = generic_headers(connection, body)
    client.post(f"/hooks/{connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers)
    response = api.post("/api/v1/messages/", registration(connection), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "delivered"


def test_api_requires_a_token():
    assert APIClient().get("/api/v1/messages/").status_code == 401


def test_search_by_number_in_any_common_format(api):
    wanted = MessageFactory(recipient="+33612345678")
    MessageFactory(recipient="+33698765432")
    for spelling in ("+33612345678", "+33 6 12 34 56 78", "0033 6-12-34-56-78"):
        ids = [m["id"] for m in api.get("/api/v1/messages/", {"recipient": spelling}).json()["results"]]
        assert ids == [wanted.pk], spelling
    national = api.get("/api/v1/messages/", {"recipient": "06 12 34 56 78", "region": "FR"}).json()["results"]
    assert [m["id"] for m in national] == [wanted.pk]


def test_search_with_an_unreadable_number_is_400(api):
    response = api.get("/api/v1/messages/", {"recipient": "call me maybe"})
    assert response.status_code == 400
    assert "recipient" in response.json()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"provider_message_id": "a-1"}, ["a-1"]),
        ({"client_reference": "ref-b"}, ["b-2"]),
        ({"status": ["delivered", "expired"]}, ["a-1", "c-3"]),
        ({"error_class": "unknown"}, ["c-3"]),
        ({"flow": "marketing"}, ["b-2"]),
        ({"country": "gb"}, ["b-2"]),
        ({"connection": "other"}, ["c-3"]),
        ({"submitted_after": "2026-01-02T00:00:00Z"}, ["b-2", "c-3"]),
        ({"submitted_before": "2026-01-02T00:00:00Z"}, ["a-1"]),
    ],
)
def test_each_filter_narrows_the_list(api, params, expected):
    main, other = ConnectionFactory(slug="main"), ConnectionFactory(slug="other")
    day = datetime(2026, 1, 1, tzinfo=UTC)
    MessageFactory(connection=main, provider_message_id="a-1", status=Status.DELIVERED, submitted_at=day)
    MessageFactory(
        connection=main,
        provider_message_id="b-2",
        client_reference="ref-b",
        flow="marketing",
        recipient="+447700900123",
        country="GB",
        submitted_at=day + timedelta(days=1),
    )
    MessageFactory(
        connection=other,
        provider_message_id="c-3",
        status=Status.EXPIRED,
        error_class="unknown",
        submitted_at=day + timedelta(days=2),
    )
    response = api.get("/api/v1/messages/", params)
    assert response.status_code == 200
    assert sorted(m["provider_message_id"] for m in response.json()["results"]) == expected


def test_list_is_cursor_paginated_newest_first(api):
    messages = [MessageFactory() for _ in range(5)]
    first = api.get("/api/v1/messages/", {"page_size": 2}).json()
    assert [m["id"] for m in first["results"]] == [messages[4].pk, messages[3].pk]
    second = api.get(first["next"]).json()
    assert [m["id"] for m in second["results"]] == [messages[2].pk, messages[1].pk]


def test_detail_includes_the_timeline_of_receipts(api, client):
    message = MessageFactory()
    for status in ("sent", "delivered", "sent"):
        body = generic_body(message.provider_message_id, status)
        headers = generic_headers(message.connection, body)
        client.post(
            f"/hooks/{message.connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
        )
    timeline = api.get(f"/api/v1/messages/{message.pk}/").json()["timeline"]
    assert [entry["kind"] for entry in timeline] == ["registered", "receipt", "receipt", "receipt"]
    assert [entry["detail"].get("outcome") for entry in timeline[1:]] == ["applied", "applied", "late"]
    assert timeline[1]["detail"]["raw_body"].startswith("{")


def test_openapi_schema_and_docs_are_served(api, client):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/messages/" in schema.json()["paths"]
    client.force_login(user_in_role(roles.VIEWER, "bi"))
    assert client.get("/api/v1/docs/").status_code == 200
