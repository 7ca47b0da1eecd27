"""The overview's figures from factories, and its page refreshing in place."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from receipts.models import Message, Receipt
from receipts.overview import delivery_times_ranked, delivery_times_sql, overview_summary, receipts_per_minute
from tests.console.conftest import HTMX
from tests.factories import ConnectionFactory, MessageFactory

pytestmark = pytest.mark.django_db
OVERVIEW = reverse("console:overview")


def _delivered(after_seconds: float, **fields) -> Message:
    submitted = timezone.now() - timedelta(minutes=10)
    return MessageFactory(status="delivered", submitted_at=submitted,
                          final_at=submitted + timedelta(seconds=after_seconds), **fields)  # fmt: skip


def _failed(reason: str, **fields) -> Message:
    return MessageFactory(status="undelivered", reason=reason, error_class="temporary", **fields)


def test_time_to_delivery_is_the_same_with_percentile_cont_and_with_the_ranked_fallback() -> None:
    for seconds in (1, 2, 3, 4, 10, 7.5):
        _delivered(seconds)
    _failed("absent_subscriber")
    delivered = Message.objects.filter(status="delivered")
    for by_sql, by_rank in zip(delivery_times_sql(delivered), delivery_times_ranked(delivered), strict=True):
        assert abs(by_sql - by_rank) < timedelta(milliseconds=1)
    assert delivery_times_ranked(Message.objects.none()) == (None, None)
    assert delivery_times_ranked(delivered.filter(flow="none")) == (None, None)
    assert delivery_times_ranked(delivered.filter(pk=delivered.first().pk)) == (timedelta(seconds=1),) * 2
    p50, p95 = overview_summary(window="1h").p50, overview_summary(window="1h").p95
    assert p50 == timedelta(seconds=3.5)
    assert p95 == timedelta(seconds=9.375)


def test_delivery_rate_counts_only_messages_with_a_final_status() -> None:
    for _ in range(3):
        _delivered(2)
    _failed("absent_subscriber")
    MessageFactory(status="sent")
    summary = overview_summary(window="1h")
    assert (summary.totals.total, summary.totals.delivered, summary.totals.failed) == (5, 3, 1)
    assert summary.totals.delivery_rate == 0.75
    assert summary.totals.pending == 1


def test_the_window_bounds_which_messages_count() -> None:
    MessageFactory(submitted_at=timezone.now() - timedelta(hours=2))
    MessageFactory(submitted_at=timezone.now() - timedelta(days=2))
    assert overview_summary(window="1h").totals.total == 0
    assert overview_summary(window="24h").totals.total == 1
    assert overview_summary(window="7d").totals.total == 2


def test_top_failure_reasons_and_breakdowns_by_connection_and_country() -> None:
    eu, us = ConnectionFactory(slug="eu"), ConnectionFactory(slug="us")
    MessageFactory(status="failed", reason="", connection=us, country="US", flow="no-reason")
    for _ in range(3):
        _failed("absent_subscriber", connection=eu, country="FR")
    _failed("landline", connection=us, country="US")
    _delivered(1, connection=us, country="US")
    summary = overview_summary(window="1h")
    assert [(r.reason, r.messages) for r in summary.top_reasons] == [
        ("absent_subscriber", 3), ("landline", 1), ("unknown", 1)
    ]  # fmt: skip
    assert "switched off" in summary.top_reasons[0].explanation
    assert [(t.key, t.total, t.delivered, t.failed) for t in summary.by_connection] == [
        ("eu", 3, 0, 3),
        ("us", 3, 1, 2),
    ]
    assert [(t.key, t.delivery_rate) for t in summary.by_country] == [("FR", 0.0), ("US", 1 / 3)]
    assert (summary.totals.total, summary.totals.failed) == (6, 5)


def test_receipts_per_minute_fills_every_minute_of_the_last_hour() -> None:
    now = timezone.now().replace(second=30, microsecond=0)
    message = MessageFactory()
    for n, ago in enumerate((0, 0, 1, 59, 60)):
        Receipt.objects.create(connection=message.connection, message=message, provider_message_id="x",
                               dedupe_key=f"d{n}", provider_status="sent", status="sent", outcome="applied",
                               received_at=now - timedelta(minutes=ago))  # fmt: skip
    buckets = receipts_per_minute(now=now)
    assert len(buckets) == 60
    assert buckets[-1].minute == now.replace(second=0)
    assert (buckets[-1].receipts, buckets[-2].receipts, buckets[0].receipts) == (2, 1, 1)
    assert sum(b.receipts for b in buckets) == 4  # the one 60 minutes ago is outside


def test_the_page_shows_the_figures_and_polls_its_fragment(viewer: Client) -> None:
    _delivered(2)
    _failed("absent_subscriber")
    page = viewer.get(OVERVIEW).content.decode()
    assert "<html" in page
    assert 'hx-trigger="every 30s"' in page
    assert 'data-testid="delivery-rate">50.0 %<' in page
    assert "absent_subscriber" in page
    fragment = viewer.get(OVERVIEW, {"window": "7d"}, **HTMX).content.decode()
    assert fragment.lstrip().startswith('<section id="figures"')
    assert "<html" not in fragment
    assert 'hx-get="/console/?window=7d"' in fragment


def test_an_unknown_window_is_refused(viewer: Client) -> None:
    response = viewer.get(OVERVIEW, {"window": "1y"})
    assert response.status_code == 400
    assert "1h, 24h, 7d" in response.content.decode()


def test_the_overview_costs_a_fixed_number_of_queries(viewer: Client, django_assert_max_num_queries) -> None:
    for n in range(20):
        _failed("absent_subscriber", connection=ConnectionFactory(), country=f"A{n % 5}")
    # session, user, permissions, role badge; totals, percentiles, per minute, reasons, two breakdowns.
    with django_assert_max_num_queries(11):
        viewer.get(OVERVIEW)
