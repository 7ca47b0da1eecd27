"""The message page tells what actually happened: the chain's escalation in words, resends the
catalog advises against, missing receipts, the reader's time zone and international numbers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dlrconsole.accounts.models import Profile
from dlrconsole.audit.models import AuditEntry
from receipts.models import Message, OutboxEvent, Receipt
from receipts.statuses import Status
from retries.decisions import decide
from retries.models import Attempt
from tests.factories import MessageFactory, rule_with_steps
from tests.send_api import FakeGateway

# The shipped rules, as migrations install them: a transactional test run before in the same
# process (another file, under xdist) flushes them away.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_rules")]


def _page(client: Client, message: Message) -> str:
    response = client.get(reverse("console:message", args=[message.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _decide(message: Message) -> None:
    decide(OutboxEvent.objects.create(message=message, kind="status_changed", status=message.status,
                                      created_at=timezone.now()))  # fmt: skip


def test_next_comes_from_the_chain_not_from_the_catalogs_generic_advice(support: Client) -> None:
    rule_with_steps("OTP retries", {"action": "retry_same", "count": 2, "delays": [30]}, {"action": "notify"},
                    flows=["login-otp"], deadline_seconds=300)  # fmt: skip
    message = MessageFactory(status="undelivered", reason="absent_subscriber", error_class="temporary")
    _decide(message)
    page = _page(support, message)
    assert "Attempt 1 through" in page
    assert "is scheduled for" in page
    assert "If that fails too, rule “OTP retries” goes on with:" in page
    assert "step 1: retry on the same connection, 1 attempt left" in page
    assert "step 2: notify the product" in page
    assert "Deadline:" in page
    assert "nothing is sent after it" in page
    assert "Retry later on the same route" not in page  # the catalog's advice gives way to the chain


def test_without_a_chain_the_catalogs_advice_is_shown(support: Client) -> None:
    message = MessageFactory(status="undelivered", reason="absent_subscriber", error_class="temporary")
    page = _page(support, message)
    assert "Retry later on the same route" in page
    assert "No rule has acted on this message." in page


def test_the_product_notified_and_nothing_more_planned_are_said_in_plain_words(support: Client) -> None:
    message = MessageFactory(status="undelivered", reason="unknown_subscriber", error_class="permanent")
    _decide(message)  # the shipped rule: never retry, tell the product
    page = _page(support, message)
    assert "The product was notified of the failure." in page
    assert "Nothing more is planned" in page
    assert "Unknown subscriber" in page  # the reason's label, not its code


def test_an_attempt_says_accepted_by_the_provider_apart_from_the_resends_status(support: Client) -> None:
    rule_with_steps("Retry", {"action": "retry_same", "count": 1}, flows=["login-otp"])
    message = MessageFactory(status="undelivered", reason="absent_subscriber", error_class="temporary")
    _decide(message)
    resend = MessageFactory(chain_root=message, connection=message.connection, status="sent")
    Attempt.objects.update(outcome=Attempt.Outcome.SUCCEEDED, resend=resend, finished_at=timezone.now())
    page = _page(support, message)
    assert "accepted by the provider; the resend is sent." in page
    assert f'href="/console/messages/{resend.pk}/">See the resend</a>' in page


def test_resend_is_not_offered_when_impossible_and_the_page_says_why(support: Client) -> None:
    message = MessageFactory(status="undelivered", reason="absent_subscriber", error_class="temporary")
    page = _page(support, message)
    assert 'data-testid="resend-button"' not in page
    assert f"No resend possible: connection {message.connection.slug} has no send API configured." in page
    delivered = MessageFactory(status="delivered")
    assert "No resend possible: this message&#x27;s chain was already delivered" in _page(support, delivered)


def test_a_never_retry_failure_warns_and_needs_a_reason_which_is_audited(support: Client, gateway: FakeGateway) -> None:
    message = MessageFactory(status="undelivered", reason="unknown_subscriber", error_class="permanent")
    gateway.configure(message.connection)
    url = reverse("console:resend", args=[message.pk])
    form = support.get(url).content.decode()
    assert 'data-testid="never-retry-warning"' in form
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', form)[1]  # type: ignore[index]
    refused = support.post(url, {"request_key": key, "reason": "   "})
    assert refused.status_code == 400
    assert "Say why this message is resent" in refused.content.decode()
    assert not Attempt.objects.exists()
    done = support.post(url, {"request_key": key, "reason": "The user says the number was ported yesterday"})
    assert done.status_code == 302
    attempt = Attempt.objects.get()
    assert "against the catalog's advice: The user says the number was ported yesterday" in attempt.decision.why
    entry = AuditEntry.objects.get(model="retries.attempt")
    assert (entry.username, entry.object_id) == ("support-user", str(attempt.pk))
    assert entry.changes[0]["new"] == "The user says the number was ported yesterday"


def test_a_retryable_failure_resends_without_a_reason_or_audit_entry(support: Client, gateway: FakeGateway) -> None:
    message = MessageFactory(status="undelivered", reason="absent_subscriber", error_class="temporary")
    gateway.configure(message.connection)
    url = reverse("console:resend", args=[message.pk])
    form = support.get(url).content.decode()
    assert "never-retry-warning" not in form
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', form)[1]  # type: ignore[index]
    assert support.post(url, {"request_key": key}).status_code == 302
    assert Attempt.objects.count() == 1
    assert not AuditEntry.objects.filter(model="retries.attempt").exists()


def test_a_message_pending_past_its_receipt_sla_shows_no_receipt(support: Client, settings) -> None:
    settings.DLR_RECEIPT_SLA_SECONDS = 3600
    settings.DLR_FLOW_RECEIPT_SLA_SECONDS = {"login-otp": 120}
    late = MessageFactory(status="sent", flow="login-otp", submitted_at=timezone.now() - timedelta(minutes=5))
    page = _page(support, late)
    assert 'data-testid="status-badge">No receipt<' in page
    assert "on its way" not in page
    assert "within 2 min 0 s of sending" in page
    fresh = MessageFactory(status="sent", flow="signup", submitted_at=timezone.now() - timedelta(minutes=5))
    assert 'data-testid="status-badge">Sent<' in _page(support, fresh)  # the default SLA, an hour, is not over


def test_no_receipt_is_a_status_filter_of_the_search_and_the_api(support: Client, settings) -> None:
    settings.DLR_RECEIPT_SLA_SECONDS = 3600
    settings.DLR_FLOW_RECEIPT_SLA_SECONDS = {"login-otp": 120}
    now = timezone.now()
    late_otp = MessageFactory(status="sent", flow="login-otp", submitted_at=now - timedelta(minutes=5))
    late_other = MessageFactory(status="accepted", flow="signup", submitted_at=now - timedelta(hours=2))
    MessageFactory(status="sent", flow="signup", submitted_at=now - timedelta(minutes=5))  # within its SLA
    MessageFactory(status="delivered", flow="login-otp", submitted_at=now - timedelta(hours=2))  # has its receipt
    response = support.get(reverse("console:search"), {"status": "no_receipt"})
    found = {int(pk) for pk in re.findall(r'href="/console/messages/(\d+)/" data-testid="result-link"',
                                          response.content.decode())}  # fmt: skip
    assert found == {late_otp.pk, late_other.pk}
    api = support.get("/api/v1/messages/", {"status": "no_receipt"})
    assert api.status_code == 200
    assert {row["id"] for row in api.json()["results"]} == {late_otp.pk, late_other.pk}


def test_times_are_shown_in_the_users_time_zone_with_utc_on_hover(support: Client) -> None:
    user = get_user_model().objects.get(username="support-user")
    Profile.objects.create(user=user, time_zone="Europe/Paris")
    with time_machine.travel(datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC), tick=False):
        message = MessageFactory(status="sent")
        client = Client()
        client.force_login(user)  # the zone is remembered at sign-in
        page = _page(client, message)
    assert '<time datetime="2026-01-15T12:00:00+00:00" title="2026-01-15 12:00:00 UTC">2026-01-15 13:00:00 ' in page
    assert '<span class="tz">CET</span>' in page


def test_a_person_sets_their_time_zone_and_a_wrong_name_is_refused(support: Client) -> None:
    url = reverse("time-zone")
    assert "UTC" in support.get(url).content.decode()
    bad = support.post(url, {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 400
    assert "is not a time zone name" in bad.content.decode()
    assert not Profile.objects.exists()
    assert support.post(url, {"time_zone": "Asia/Tokyo"}).status_code == 302
    assert Profile.objects.get().time_zone == "Asia/Tokyo"
    assert 'data-testid="current-time-zone">Asia/Tokyo<' in support.get(url).content.decode()


def test_a_provider_time_before_submission_is_explained_as_the_providers_clock(support: Client) -> None:
    message = MessageFactory(status="delivered")
    Receipt.objects.create(
        connection=message.connection, message=message, provider_message_id=message.provider_message_id,
        dedupe_key="k1", provider_status="DELIVRD", status=Status.DELIVERED, outcome="applied", raw_body="{}",
        received_at=message.submitted_at + timedelta(seconds=4),
        provider_timestamp=message.submitted_at - timedelta(seconds=42),
    )  # fmt: skip
    assert "the provider&#x27;s clock is 42 s behind ours" in _page(support, message)


def test_numbers_are_shown_in_international_format_and_masked_as_before(support: Client, viewer: Client) -> None:
    message = MessageFactory(recipient="+33612345678")
    assert "+33 6 12 34 56 78" in _page(support, message)
    masked = viewer.get(reverse("console:search")).content.decode()
    assert "+336•••••678" in masked
    assert "+33 6 12 34 56 78<" not in masked


def test_a_national_number_without_a_country_uses_the_default_region_and_says_so(support: Client, settings) -> None:
    wanted = MessageFactory(recipient="+33612345678")
    settings.DLR_DEFAULT_REGION = "FR"
    page = support.get(reverse("console:search"), {"q": "06 12 34 56 78"}).content.decode()
    assert f'href="/console/messages/{wanted.pk}/"' in page
    assert "Searched +33 6 12 34 56 78: no country given, so assumed France (+33)" in page
    international = support.get(reverse("console:search"), {"q": "+33 6 12 34 56 78"}).content.decode()
    assert "assumed" not in international  # nothing was assumed for a number with its country code
    settings.DLR_DEFAULT_REGION = ""
    unassumed = support.get(reverse("console:search"), {"q": "06 12 34 56 78"}).content.decode()
    assert f'href="/console/messages/{wanted.pk}/"' not in unassumed


def test_a_resend_is_marked_in_search_results_with_a_link_to_the_original(support: Client) -> None:
    original = MessageFactory(status="undelivered")
    MessageFactory(chain_root=original, connection=original.connection, status="delivered")
    page = support.get(reverse("console:search")).content.decode()
    assert page.count('data-testid="resend-mark"') == 1
    assert f'resend of <a href="/console/messages/{original.pk}/">the original</a>' in page
