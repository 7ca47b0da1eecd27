"""Every index costs a write on each row version of its table, and disk at 10^8 rows: none of
ours may be one that another index already serves."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from retries.feed.models import FeedEvent
from retries.models import Attempt, Decision
from tests.factories import MessageFactory

OUR_APPS = {"receipts", "rollups", "flows", "retries", "feed", "alerts", "reports", "accounts", "audit"}
# Kept on purpose: the rollup pages read a window of one grain and group it, through an index
# narrower than the cell's unique one (seven columns, most of them text).
SERVED_ON_PURPOSE = {"rollup_grain_bucket_idx", "rollup_reason_grain_bucket_idx"}


def our_tables() -> set[str]:
    """The tables of our apps' models; Django's own many-to-many tables left out (it makes
    their indexes)."""
    return {
        model._meta.db_table
        for model in apps.get_models(include_auto_created=False)
        if model._meta.app_label in OUR_APPS
    }


def plain_indexes_served_by_another() -> list[str]:
    """Non-unique, non-partial indexes whose columns (and operator classes) lead another index
    or unique constraint of the same table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, i.relname, x.indkey::int2[]::int[], x.indclass::oid[]::text[], x.indisunique, "
            "x.indpred IS NOT NULL OR x.indexprs IS NOT NULL "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE t.relname = ANY(%s)",
            [sorted(our_tables())],
        )
        rows = cursor.fetchall()
    found = []
    for table, name, columns, classes, unique, partial in rows:
        if unique or partial or name in SERVED_ON_PURPOSE:
            continue
        for other_table, other, other_columns, other_classes, _, other_partial in rows:
            if other_table != table or other == name or other_partial:
                continue
            width = len(columns)
            if other_columns[:width] == columns and other_classes[:width] == classes:
                found.append(f"{table}.{name} (served by {other})")
                break
    return found


@pytest.mark.django_db
def test_no_index_of_ours_repeats_the_leading_columns_of_another() -> None:
    assert {"feed_feeddelivery", "retries_attempt", "receipts_conversion"} <= our_tables()
    assert plain_indexes_served_by_another() == []


def pattern_indexes(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_opclass o ON o.oid = ANY(x.indclass::oid[]) "
            "WHERE t.relname = %s AND o.opcname LIKE '%%pattern_ops'",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_feed_events_and_attempts_carry_no_index_for_prefix_searches_of_their_ids() -> None:
    assert pattern_indexes("feed_feedevent") == []
    assert pattern_indexes("retries_attempt") == []
    # The check can see one: the connection's slug keeps Django's.
    assert pattern_indexes("receipts_connection") != []


@pytest.mark.django_db
def test_a_webhook_id_is_still_given_to_one_event_only() -> None:
    message = MessageFactory()
    first = FeedEvent.objects.create(
        type=FeedEvent.Type.DELIVERED, message=message, payload={}, created_at=timezone.now()
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        FeedEvent.objects.create(
            type=FeedEvent.Type.FAILED,
            message=message,
            payload={},
            created_at=timezone.now(),
            webhook_id=first.webhook_id,
        )
    assert FeedEvent.objects.filter(webhook_id=first.webhook_id).count() == 1


@pytest.mark.django_db
def test_an_idempotency_key_is_still_given_to_one_attempt_only() -> None:
    now = timezone.now()
    message = MessageFactory()
    decision = Decision.objects.create(
        message=message, action="retry_same", state="scheduled", why="rule", created_at=now
    )
    Attempt.objects.create(decision=decision, chain_root=message, number=1, idempotency_key="k-1", due_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():
        Attempt.objects.create(decision=decision, chain_root=message, number=2, idempotency_key="k-1", due_at=now)
    assert Attempt.objects.filter(idempotency_key="k-1").count() == 1
