"""Connections: secrets are never shown back; Twilio verification uses the public URL."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django import db
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import ProtectedError
from django.db.models.deletion import Collector
from django.utils import timezone

from receipts.models import Connection, Message, Receipt
from receipts.statuses import ReceiptOutcome, Status
from tests.factories import ConnectionFactory, MessageFactory, TwilioConnectionFactory
from tests.webhooks import twilio_form, twilio_signed

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.com", "pw-for-tests"))
    return client


def test_admin_pages_never_show_a_secret_in_full(admin_client):
    connection = TwilioConnectionFactory(secrets=["first-secret-value-abcd", "second-secret-value-wxyz"])
    for url in ("/admin/receipts/connection/", f"/admin/receipts/connection/{connection.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert "first-secret-value" not in page
        assert "second-secret-value" not in page
    assert "…abcd" in admin_client.get(f"/admin/receipts/connection/{connection.pk}/change/").content.decode()


# The price list inline's management form, empty.
NO_PRICES = {"prices-TOTAL_FORMS": "0", "prices-INITIAL_FORMS": "0"}


def test_admin_form_keeps_secrets_when_left_empty_and_replaces_them_when_given(admin_client):
    connection = TwilioConnectionFactory(secrets=["kept-secret-0001"])
    url = f"/admin/receipts/connection/{connection.pk}/change/"
    form = {
        "slug": connection.slug, "provider": "twilio", "name": "", "public_url": "", "enabled": "on",
        "test_mode": "off", **NO_PRICES,
    }  # fmt: skip
    assert admin_client.post(url, {**form, "new_secrets": ""}).status_code == 302
    connection.refresh_from_db()
    assert connection.secrets == ["kept-secret-0001"]
    admin_client.post(url, {**form, "new_secrets": "new-one-0001\nnew-two-0002\n"})
    connection.refresh_from_db()
    assert connection.secrets == ["new-one-0001", "new-two-0002"]


def test_twilio_callback_signed_over_the_public_url_is_accepted_behind_a_proxy(client):
    connection = TwilioConnectionFactory(public_url="https://dlr.example.com/hooks/twilio-main/")
    message = MessageFactory(connection=connection, provider_message_id="SM0123456789abcdef0123456789abcdef")
    form = twilio_form(message.provider_message_id, "undelivered", ErrorCode="30003", RawDlrDoneDate="2611261201")
    body, headers = twilio_signed(connection, connection.public_url, form)
    response = client.post(
        f"/hooks/{connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )
    assert response.status_code == 200
    message = Message.objects.get(pk=message.pk)
    assert (message.status, message.error_code, message.reason, message.error_class) == (
        Status.UNDELIVERED,
        "30003",
        "absent_subscriber",
        "temporary",
    )
    receipt = Receipt.objects.get()
    assert receipt.provider_timestamp.isoformat() == "2026-11-26T12:01:00+00:00"
    assert "x-twilio-signature" not in receipt.headers


def test_twilio_callback_signed_over_the_public_url_fails_without_it(client):
    connection = TwilioConnectionFactory()
    body, headers = twilio_signed(connection, "https://dlr.example.com/hooks/x/", twilio_form("SM1", "sent"))
    response = client.post(
        f"/hooks/{connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )
    assert response.status_code == 401


def test_switching_provider_with_secrets_unfit_for_it_is_a_form_error_not_a_500(admin_client):
    connection = ConnectionFactory(slug="switch")  # a Standard Webhooks whsec_ secret
    response = admin_client.post(
        f"/admin/receipts/connection/{connection.pk}/change/",
        {"slug": "switch", "provider": "telnyx", "name": "", "public_url": "", "options": "{}",
         "allowed_ips": "[]", "enabled": "on", "new_secrets": "", "test_mode": "off"},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["new_secrets"]
    connection.refresh_from_db()
    assert connection.provider == "standard-webhooks"


def test_a_price_list_is_kept_per_country_and_refuses_what_is_not_a_country_or_a_currency(admin_client):
    connection = TwilioConnectionFactory(secrets=["kept-secret-0001"])
    url = f"/admin/receipts/connection/{connection.pk}/change/"
    form = {"slug": connection.slug, "provider": "twilio", "enabled": "on", "test_mode": "off"}
    form["prices-INITIAL_FORMS"] = "0"
    price = {"prices-0-country": "fr", "prices-0-price": "0.0650", "prices-0-currency": "eur"}
    assert admin_client.post(url, {**form, "prices-TOTAL_FORMS": "1", **price}).status_code == 302
    assert list(connection.prices.values_list("country", "price", "currency")) == [("FR", Decimal("0.065"), "EUR")]
    wrong = {"prices-0-country": "XX", "prices-0-price": "-1", "prices-0-currency": "EU1"}
    response = admin_client.post(url, {**form, "prices-TOTAL_FORMS": "1", **wrong})
    assert response.status_code == 200
    page = response.content.decode()
    assert "XX is not an ISO 3166 country code." in page
    assert "An ISO 4217 code, e.g. EUR." in page
    assert connection.prices.count() == 1


def test_an_admin_puts_a_connection_in_test_mode_with_its_test_numbers_and_the_change_is_audited(admin_client):
    from dlrconsole.audit.models import AuditEntry

    connection = TwilioConnectionFactory(secrets=["kept-secret-0001"])
    url = f"/admin/receipts/connection/{connection.pk}/change/"
    form = {"slug": connection.slug, "provider": "twilio", "enabled": "on", **NO_PRICES}
    without = admin_client.post(url, {**form, "test_mode": "test", "test_numbers": ""})
    assert without.context["adminform"].form.errors["test_numbers"] == ["Test mode needs at least one test number."]
    wrong = admin_client.post(url, {**form, "test_mode": "test", "test_numbers": "0612345678\n+33 1\n+447700900123"})
    assert wrong.context["adminform"].form.errors["test_numbers"] == [
        "0612345678: not a phone number: Missing or invalid default region.",
        "+33 1: not a phone number: The string supplied is too short to be a phone number.",
        "+447700900123: not a valid number (no such number range in its country)",
        "Test mode needs at least one test number.",
    ]
    many = "\n".join(f"+3361234{n:04d}" for n in range(21))
    too_many = admin_client.post(url, {**form, "test_mode": "test", "test_numbers": many})
    assert too_many.context["adminform"].form.errors["test_numbers"] == ["At most 20 test numbers."]
    unknown_mode = admin_client.post(url, {**form, "test_mode": "sandbox", "test_numbers": ""})
    assert "Select a valid choice." in unknown_mode.context["adminform"].form.errors["test_mode"][0]
    connection.refresh_from_db()
    assert (connection.test_mode, connection.test_numbers) == ("off", [])

    saved = admin_client.post(url, {**form, "test_mode": "test", "test_numbers": "+33 6 12 34 56 78\n0044 7400 123456"})
    assert saved.status_code == 302
    connection.refresh_from_db()
    assert (connection.test_mode, connection.test_numbers) == ("test", ["+33612345678", "+447400123456"])
    assert connection.test_recipients("GB") == ["+447400123456"]
    assert "+33612345678\n+447400123456" in admin_client.get(url).content.decode()
    entry = AuditEntry.objects.filter(model="receipts.connection", action="changed").latest("at")
    assert {change["field"] for change in entry.changes} >= {"test_mode", "test_numbers"}


# Deleting a connection. Receipts name theirs without a database constraint (one check per
# inserted row cost a batch ~4 ms); what the constraint guarded is pinned here.


def parked_receipt(connection: Connection, provider_message_id: str) -> Receipt:
    return Receipt.objects.create(
        connection=connection, provider_message_id=provider_message_id, dedupe_key=provider_message_id,
        provider_status="delivered", status=Status.DELIVERED, received_at=timezone.now(),
        outcome=ReceiptOutcome.PARKED,
    )  # fmt: skip


def test_the_admin_refuses_to_delete_a_connection_that_has_only_parked_receipts(admin_client):
    connection = ConnectionFactory()
    parked_receipt(connection, "never-registered")
    page = admin_client.post(f"/admin/receipts/connection/{connection.pk}/delete/", {"post": "yes"})
    assert page.status_code == 200
    assert "would require deleting the following protected related objects" in page.content.decode()
    assert Connection.objects.filter(pk=connection.pk).exists()


def test_the_admin_deletes_a_connection_nothing_refers_to(admin_client):
    connection = ConnectionFactory()
    page = admin_client.post(f"/admin/receipts/connection/{connection.pk}/delete/", {"post": "yes"})
    assert page.status_code == 302
    assert not Connection.objects.filter(pk=connection.pk).exists()


def test_a_receipt_stored_after_the_protect_check_still_keeps_its_connection():
    connection = ConnectionFactory()
    collector = Collector(using=DEFAULT_DB_ALIAS)
    collector.collect([connection])  # Django's PROTECT check: nothing refers to it yet
    parked_receipt(connection, "arrived-meanwhile")
    with pytest.raises(ProtectedError), transaction.atomic():  # as the admin's delete view runs it
        collector.delete()
    assert Connection.objects.filter(pk=connection.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_connection_waits_for_a_batch_being_stored_then_refuses():
    connection = ConnectionFactory()
    inserted, release = threading.Event(), threading.Event()

    def batch_in_flight() -> None:
        try:
            with transaction.atomic():
                parked_receipt(connection, "in-flight")
                inserted.set()
                release.wait(10)
        finally:
            db.connection.close()

    batch = threading.Thread(target=batch_in_flight)
    batch.start()
    try:
        assert inserted.wait(10)
        collector = Collector(using=DEFAULT_DB_ALIAS)
        collector.collect([connection])  # the batch has not committed: nothing refers to it yet
        # The delete waits for the batch's lock; let the batch commit once it is waiting (or
        # before: either way the delete must see the receipt).
        threading.Timer(0.5, release.set).start()
        with pytest.raises(ProtectedError):
            collector.delete()
    finally:
        release.set()
        batch.join(10)
    assert Connection.objects.filter(pk=connection.pk).exists()
    assert Receipt.objects.get().connection == connection
