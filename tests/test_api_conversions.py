"""The product reports conversions (an OTP entered, a link opened) per message: by our id or by
connection and provider message id; once per kind; refused with a reason when it cannot be true
of the message; shown on the message's timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from dlrconsole import roles
from receipts.models import Conversion
from tests.factories import MessageFactory, api_client_for, user_in_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return api_client_for(user_in_role(roles.PRODUCT, "product"))


def test_a_conversion_is_recorded_once_and_shown_on_the_timeline(api: APIClient) -> None:
    message = MessageFactory()
    url = f"/api/v1/messages/{message.pk}/conversions/"
    first = api.post(url, {"kind": "otp_entered"}, format="json")
    again = api.post(url, {"kind": "otp_entered"}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["message"] == message.pk
    assert first.json()["kind"] == "otp_entered"
    assert Conversion.objects.filter(message=message).count() == 1
    timeline = api.get(f"/api/v1/messages/{message.pk}/").json()["timeline"]
    assert [entry["summary"] for entry in timeline if entry["kind"] == "conversion"] == [
        "Conversion reported: code entered"
    ]


def test_a_conversion_can_name_the_message_by_connection_and_provider_id(api: APIClient) -> None:
    message = MessageFactory(provider_message_id="SM42")
    converted_at = (message.submitted_at + timedelta(seconds=20)).isoformat()
    response = api.post(
        "/api/v1/messages/conversions/",
        {"connection": message.connection.slug, "provider_message_id": "SM42", "kind": "link_opened",
         "converted_at": converted_at},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201
    conversion = Conversion.objects.get()
    assert (conversion.message, conversion.kind) == (message, "link_opened")
    assert conversion.converted_at == message.submitted_at + timedelta(seconds=20)


def test_a_conversion_for_an_unknown_message_is_404_with_a_reason(api: APIClient) -> None:
    message = MessageFactory(provider_message_id="SM42")
    response = api.post(
        "/api/v1/messages/conversions/",
        {"connection": message.connection.slug, "provider_message_id": "SM43", "kind": "otp_entered"},
        format="json",
    )
    assert response.status_code == 404
    assert "No message with this provider message id" in response.json()["detail"]
    assert api.post("/api/v1/messages/999999/conversions/", {"kind": "otp_entered"}, format="json").status_code == 404
    assert not Conversion.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "why"),
    [
        ({"kind": "teleported"}, "kind", "is not a valid choice"),
        ({}, "kind", "required"),
        ({"kind": "otp_entered", "converted_at": "yesterday"}, "converted_at", "format"),
        ({"kind": "otp_entered", "converted_at": "+1 day"}, "converted_at", "in the future"),
        ({"kind": "otp_entered", "converted_at": "-1 day"}, "converted_at", "before the message was submitted"),
    ],
)
def test_a_conversion_that_cannot_be_true_is_refused_with_the_reason(
    api: APIClient, body: dict[str, str], field: str, why: str
) -> None:
    message = MessageFactory()
    relative = {"+1 day": timedelta(days=1), "-1 day": timedelta(days=-1)}
    if body.get("converted_at") in relative:
        body = body | {"converted_at": (timezone.now() + relative[body["converted_at"]]).isoformat()}
    response = api.post(f"/api/v1/messages/{message.pk}/conversions/", body, format="json")
    assert response.status_code == 400
    assert why in " ".join(response.json()[field])
    assert not Conversion.objects.exists()


def test_only_callers_that_register_messages_report_conversions() -> None:
    message = MessageFactory()
    viewer = api_client_for(user_in_role(roles.VIEWER, "viewer"))
    response = viewer.post(f"/api/v1/messages/{message.pk}/conversions/", {"kind": "otp_entered"}, format="json")
    assert response.status_code == 403
    assert APIClient().post(f"/api/v1/messages/{message.pk}/conversions/", {"kind": "otp_entered"}).status_code == 401
