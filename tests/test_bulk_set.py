"""Several rows' fields written in one statement, each row with its own values, None and times
included, as Django's bulk_update would write them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dlrconsole.lib.bulk_update import bulk_set
from receipts.models import Message
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def test_each_row_gets_its_own_values_in_one_statement():
    now = timezone.now()
    first, second, third = MessageFactory.create_batch(3)
    resent = MessageFactory()
    first.status, first.final_at, first.chain_root = "delivered", now, resent
    second.status, second.final_at, second.chain_root = "undelivered", now - timedelta(seconds=3), None
    third.status, third.final_at, third.chain_root = "expired", None, None

    with CaptureQueriesContext(connection) as queries:
        bulk_set([first, second, third], ["status", "final_at", "chain_root"])

    assert len(queries.captured_queries) == 1
    rows = Message.objects.filter(pk__in=[first.pk, second.pk, third.pk]).order_by("pk")
    assert list(rows.values_list("status", "final_at", "chain_root")) == [
        ("delivered", now, resent.pk),
        ("undelivered", now - timedelta(seconds=3), None),
        ("expired", None, None),
    ]
    assert Message.objects.get(pk=resent.pk).status == resent.status  # others untouched


def test_the_same_fields_twice_are_the_same_statement():
    messages = MessageFactory.create_batch(2)
    with CaptureQueriesContext(connection) as queries:
        bulk_set(messages[:1], ["status"])
        bulk_set(messages, ["status"])
    first, second = (query["sql"] for query in queries.captured_queries)
    assert first.split("FROM")[0] == second.split("FROM")[0]


def test_nothing_to_write_is_no_statement():
    with CaptureQueriesContext(connection) as queries:
        bulk_set([], ["status"])
    assert queries.captured_queries == []


def test_only_a_models_own_columns_can_be_set():
    with pytest.raises(ValueError, match="own columns"):
        bulk_set([MessageFactory()], ["receipts"])
