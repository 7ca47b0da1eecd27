"""A message's page: what to tell the end user, the whole timeline, the chain, the recipient's others."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from receipts.models import Message, Receipt
from retries.feed.models import FeedDelivery, ProductEndpoint
from retries.feed.services import feed_publish
from retries.models import Attempt, Decision
from tests.console.conftest import HTMX
from tests.factories import GENERIC_SECRET, MessageFactory

pytestmark = pytest.mark.django_db


def _receipt(message: Message, n: int, **fields) -> Receipt:
    values = {
        "connection": message.connection, "message": message, "provider_message_id": message.provider_message_id,
        "dedupe_key": f"k-{message.pk}-{n}", "provider_status": "sent", "status": "sent", "outcome": "applied",
        "received_at": message.submitted_at + timedelta(seconds=n), "raw_body": "{}",
    } | fields  # fmt: skip
    return Receipt.objects.create(**values)


def _failed_message() -> Message:
    message = MessageFactory(status="undelivered", error_code="27", reason="absent_subscriber", error_class="temporary",
                             catalog_class="temporary", class_source="catalog")  # fmt: skip
    _receipt(message, 1)
    _receipt(message, 2, provider_status="UNDELIVRD", status="undelivered", error_code="27",
             reason="absent_subscriber", error_class="temporary", catalog_class="temporary", class_source="catalog",
             raw_body=json.dumps({"status": "UNDELIVRD", "note": "<script>alert(1)</script>"}))  # fmt: skip
    return message


def _page(client: Client, message: Message) -> str:
    response = client.get(reverse("console:message", args=[message.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_says_what_to_tell_the_end_user_and_what_comes_next(support: Client) -> None:
    page = _page(support, _failed_message())
    assert 'data-testid="status-badge">Undelivered<' in page
    assert "badge-red" in page
    assert "The phone was switched off or out of coverage" in page
    assert "Retry later on the same route" in page


def test_a_failure_that_is_ours_to_fix_says_what_to_fix(support: Client) -> None:
    message = MessageFactory(status="rejected", reason="sender_not_registered", error_class="permanent")
    page = _page(support, message)
    assert "What we must fix:" in page
    assert "Register or verify the sender" in page


def test_the_timeline_shows_receipts_with_codes_and_an_escaped_pretty_raw_payload(support: Client) -> None:
    page = _page(support, _failed_message())
    assert 'data-testid="timeline"' in page
    assert "<code>UNDELIVRD</code>, code <code>27</code>" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;status&quot;: &quot;UNDELIVRD&quot;" in page  # indented JSON, escaped
    assert "<summary>Raw receipt</summary>" in page


def test_a_form_encoded_payload_reads_one_field_per_line(support: Client) -> None:
    message = MessageFactory()
    _receipt(message, 1, raw_body="MessageSid=SM1&MessageStatus=delivered&To=%2B33612345678")
    assert "MessageStatus = delivered\nTo = +33612345678" in _page(support, message)


def test_the_timeline_shows_decisions_attempts_and_product_notifications(support: Client) -> None:
    message = _failed_message()
    now = timezone.now()
    decision = Decision.objects.create(message=message, action="retry_same", state=Decision.State.SCHEDULED,
                                       why="rule “absent”: attempt 1 of 3", created_at=now)  # fmt: skip
    Attempt.objects.create(decision=decision, chain_root=message, number=1, idempotency_key="k1", due_at=now,
                           outcome=Attempt.Outcome.FAILED, detail="gateway said no", finished_at=now)  # fmt: skip
    ProductEndpoint.objects.create(name="product-hooks", url="http://127.0.0.1:9/hook", secret=GENERIC_SECRET)
    feed_publish(message=message, event_type="message.failed")
    FeedDelivery.objects.update(attempts=2, last_status_code=503, last_error="HTTP 503")
    page = _page(support, message)
    assert "rule “absent”: attempt 1 of 3" in page
    assert "Attempt 1: could not be sent" in page
    assert "gateway said no" in page
    assert "key <code>k1</code>" in page
    assert "Product told message.failed (0 of 1 endpoints received it)" in page
    assert "product-hooks: pending after 2 attempts (HTTP 503): HTTP 503" in page


def test_the_attempt_chain_links_the_original_and_its_resends(support: Client) -> None:
    original = MessageFactory(status="undelivered")
    resend = MessageFactory(chain_root=original, recipient=original.recipient, status="delivered")
    page = _page(support, resend)
    assert f'href="{reverse("console:message", args=[original.pk])}">Original<' in page
    assert 'aria-current="true"' in page
    assert "This message" in page


def test_the_recipients_latest_ten_other_messages_are_listed(support: Client) -> None:
    message = MessageFactory(recipient="+33611111111")
    others = [MessageFactory(recipient="+33611111111") for _ in range(12)]
    MessageFactory(recipient="+33622222222")
    response = support.get(reverse("console:message", args=[message.pk]))
    assert [m.pk for m in response.context["others"]] == [m.pk for m in reversed(others)][:10]


def test_the_page_costs_a_fixed_number_of_queries_whatever_the_timeline(support: Client, django_assert_max_num_queries):
    message = _failed_message()
    for n in range(3, 40):
        _receipt(message, n)
    ProductEndpoint.objects.create(name="a", url="http://127.0.0.1:9/a", secret=GENERIC_SECRET)
    for _ in range(5):
        feed_publish(message=message, event_type="message.failed")
    for _ in range(5):
        MessageFactory(recipient=message.recipient)
    # session, user, permissions, role badge; message; receipts; conversions; decisions; attempts;
    # feed events and their deliveries and endpoints; the chain's resends and attempts; the
    # recipient's others; the escalation's decisions, attempts and delivered check; whether a resend
    # is possible; the flows' receipt SLAs (read once per process, then cached).
    with django_assert_max_num_queries(23):
        support.get(reverse("console:message", args=[message.pk]))


def test_the_message_page_is_a_whole_page_even_for_htmx(support: Client) -> None:
    message = MessageFactory()
    assert "<html" in support.get(reverse("console:message", args=[message.pk]), **HTMX).content.decode()
