"""The error catalog through ingestion, the API and the admin: receipts and messages carry the
reason and class, the provider's disagreeing flag shows, overrides are edited with history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from dlrconsole import roles
from receipts.errors import classify_error, override_cache
from receipts.ingestion import ingest
from receipts.models import ErrorCodeOverride, Message, Receipt
from receipts.phones import parse_number
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.services import MessageRegistration, message_register
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory, TwilioConnectionFactory, api_client_for, user_in_role
from tests.webhooks import twilio_form, twilio_signed

pytestmark = pytest.mark.django_db

REQUEST = WebhookRequest(method="POST", url="https://dlr.example.com/hooks/x/", headers={}, body=b"{}")


@pytest.fixture(autouse=True)
def _fresh_overrides() -> Iterator[None]:
    override_cache.clear()
    yield
    override_cache.clear()


@pytest.fixture
def api() -> APIClient:
    return api_client_for(user_in_role(roles.PRODUCT, "product"))


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("catalog-admin", "admin@example.com", "pw-for-tests"))
    return client


def infobip_event(message_id: str, code: str, *, permanent: bool | None, status: Status = Status.UNDELIVERED):
    return ReceiptEvent(
        provider_message_id=message_id,
        provider_status="UNDELIVERABLE_NOT_DELIVERED",
        status=status,
        error_code=code,
        permanent=permanent,
    )


def test_twilio_failure_stores_reason_and_class_on_receipt_and_message(client, api):
    connection = TwilioConnectionFactory(public_url="https://dlr.example.com/hooks/twilio-main/")
    message = MessageFactory(connection=connection, provider_message_id="SM0123456789abcdef0123456789abcdef")
    form = twilio_form(message.provider_message_id, "undelivered", ErrorCode="30003")
    body, headers = twilio_signed(connection, connection.public_url, form)
    response = client.post(
        f"/hooks/{connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )
    assert response.status_code == 200
    receipt = Receipt.objects.get()
    assert (receipt.reason, receipt.error_class, receipt.catalog_class, receipt.class_source) == (
        "absent_subscriber",
        "temporary",
        "temporary",
        "catalog",
    )
    message.refresh_from_db()
    assert (message.status, message.error_code, message.reason, message.error_class) == (
        Status.UNDELIVERED,
        "30003",
        "absent_subscriber",
        "temporary",
    )
    detail = api.get(f"/api/v1/messages/{message.pk}/").json()
    assert (detail["reason"], detail["error_class"], detail["retry_advice"]) == (
        "absent_subscriber",
        "temporary",
        "same_route",
    )
    assert "switched off" in detail["explanation"]
    assert detail["provider_disagrees"] is False
    entry = detail["timeline"][1]["detail"]
    assert (entry["reason"], entry["error_class"], entry["retry_advice"]) == (
        "absent_subscriber",
        "temporary",
        "same_route",
    )
    assert "absent_subscriber" in detail["timeline"][1]["summary"]


def test_infobip_flag_against_the_catalog_is_applied_and_shown(api):
    connection = ConnectionFactory(provider="infobip")
    message = MessageFactory(connection=connection)
    ingest(
        connection=connection,
        request=REQUEST,
        events=[infobip_event(message.provider_message_id, "628", permanent=True)],
        headers={},
    )
    message.refresh_from_db()
    assert (message.reason, message.error_class, message.catalog_class, message.class_source) == (
        "handset_error",
        "permanent",
        "temporary",
        "provider",
    )
    detail = api.get(f"/api/v1/messages/{message.pk}/").json()
    assert (detail["error_class"], detail["catalog_class"], detail["class_source"]) == (
        "permanent",
        "temporary",
        "provider",
    )
    assert detail["provider_disagrees"] is True
    assert detail["retry_advice"] == "other_route"
    receipt_entry = detail["timeline"][1]["detail"]
    assert (receipt_entry["class_source"], receipt_entry["catalog_class"], receipt_entry["provider_disagrees"]) == (
        "provider",
        "temporary",
        True,
    )


def test_messages_are_filterable_by_reason_class_and_disagreement(api):
    connection = ConnectionFactory(provider="infobip")
    flagged, agreed, delivered = (MessageFactory(connection=connection) for _ in range(3))
    events = [
        infobip_event(flagged.provider_message_id, "628", permanent=True),
        infobip_event(agreed.provider_message_id, "1", permanent=True),
        infobip_event(delivered.provider_message_id, "0", permanent=False, status=Status.DELIVERED),
    ]
    ingest(connection=connection, request=REQUEST, events=events, headers={})

    def ids(params):
        response = api.get("/api/v1/messages/", params)
        assert response.status_code == 200
        return sorted(m["provider_message_id"] for m in response.json()["results"])

    assert ids({"reason": "handset_error"}) == [flagged.provider_message_id]
    assert ids({"reason": ["handset_error", "unknown_subscriber"]}) == sorted(
        [flagged.provider_message_id, agreed.provider_message_id]
    )
    assert ids({"error_class": "permanent"}) == sorted([flagged.provider_message_id, agreed.provider_message_id])
    assert ids({"catalog_class": "temporary"}) == [flagged.provider_message_id]
    assert ids({"class_source": "provider"}) == sorted([flagged.provider_message_id, agreed.provider_message_id])
    assert ids({"provider_disagrees": "true"}) == [flagged.provider_message_id]
    assert api.get("/api/v1/messages/", {"reason": "not_a_reason"}).status_code == 400


def test_a_delivered_receipt_clears_the_reason_of_a_message():
    connection = ConnectionFactory(provider="infobip")
    message = MessageFactory(connection=connection)
    ingest(
        connection=connection,
        request=REQUEST,
        events=[infobip_event(message.provider_message_id, "27", permanent=False, status=Status.EXPIRED)],
        headers={},
    )
    ingest(
        connection=connection,
        request=REQUEST,
        events=[infobip_event(message.provider_message_id, "0", permanent=False, status=Status.DELIVERED)],
        headers={},
    )
    message.refresh_from_db()
    assert (message.status, message.reason, message.error_class, message.catalog_class, message.class_source) == (
        Status.DELIVERED,
        "",
        "",
        "",
        "",
    )


def test_a_parked_receipt_brings_its_classification_to_the_message_registered_later():
    connection = ConnectionFactory(provider="infobip")
    event = infobip_event("late-registered-1", "4101", permanent=True, status=Status.EXPIRED)
    ingest(connection=connection, request=REQUEST, events=[event], headers={})
    assert Receipt.objects.get().reason == "expired"
    message, _ = message_register(
        MessageRegistration(
            connection=connection, provider_message_id="late-registered-1", recipient=parse_number("+33612345678")
        )
    )
    assert (message.status, message.reason, message.error_class, message.catalog_class, message.class_source) == (
        Status.EXPIRED,
        "expired",
        "permanent",
        "temporary",
        "provider",
    )


def test_classifying_a_failure_costs_no_query_once_the_overrides_are_cached():
    connection = ConnectionFactory(provider="twilio")
    first, second = MessageFactory(connection=connection), MessageFactory(connection=connection)
    override_cache.get()

    def queries(message: Message, status: Status, code: str) -> int:
        event = ReceiptEvent(
            provider_message_id=message.provider_message_id,
            provider_status=status.value,
            status=status,
            error_code=code,
        )
        with CaptureQueriesContext(db) as captured:
            ingest(connection=connection, request=REQUEST, events=[event], headers={})
        return len(captured)

    assert queries(first, Status.UNDELIVERED, "30003") == queries(second, Status.DELIVERED, "")


def test_admin_saves_an_override_with_its_author_and_it_applies_at_once(admin_client):
    response = admin_client.post(
        "/admin/receipts/errorcodeoverride/add/",
        {"provider": "vonage", "code": "008", "reason": "throttled", "error_class": "", "note": "route says so"},
    )
    assert response.status_code == 302
    override = ErrorCodeOverride.objects.get()
    assert override.code == "8"
    assert classify_error(provider="vonage", status="undelivered", error_code="08").reason == "throttled"
    change = f"/admin/receipts/errorcodeoverride/{override.pk}/change/"
    page = admin_client.get(change).content.decode()
    assert "network_error" in page  # what the shipped catalog says, beside the override
    admin_client.post(
        change, {"provider": "vonage", "code": "8", "reason": "provider_error", "error_class": "", "note": ""}
    )
    history = admin_client.get(f"/admin/receipts/errorcodeoverride/{override.pk}/history/")
    assert history.status_code == 200
    assert "catalog-admin" in history.content.decode()
    assert [h.history_user.username for h in override.history.all()] == ["catalog-admin", "catalog-admin"]
    assert admin_client.get("/admin/receipts/errorcodeoverride/").status_code == 200


def test_admin_refuses_a_second_override_of_the_same_code_spelled_with_zeros(admin_client):
    ErrorCodeOverride.objects.create(provider="vonage", code="8", reason="throttled")
    response = admin_client.post(
        "/admin/receipts/errorcodeoverride/add/",
        {"provider": "vonage", "code": "0008", "reason": "provider_error", "error_class": "", "note": ""},
    )
    assert response.status_code == 200  # the form again, with the error
    assert ErrorCodeOverride.objects.count() == 1
