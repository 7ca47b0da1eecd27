"""Several rows written in one statement, each with its own values (None, times and JSON
included): new rows as Django's bulk_create would create them, fields as its bulk_update would
write them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dlrconsole.lib.bulk_writes import bulk_insert, bulk_set
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


def statements_sent(write) -> list[str]:
    """The statements' texts as sent, before any value is bound into them."""
    sent: list[str] = []

    def keep(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        write()
    return sent


def test_the_same_fields_are_the_same_statement_however_many_rows():
    # One text whatever the row count: the server prepares it once (Django's bulk_update and
    # bulk_create write one per count).
    messages = MessageFactory.create_batch(3)
    one = statements_sent(lambda: bulk_set(messages[:1], ["status", "final_at"]))
    three = statements_sent(lambda: bulk_set(messages, ["status", "final_at"]))
    assert len(one) == 1
    assert one == three


def test_new_rows_are_the_same_statement_however_many():
    from retries.feed.models import FeedEvent

    messages = MessageFactory.create_batch(3)

    def events(count: int) -> list[FeedEvent]:
        return [
            FeedEvent(message=message, type="message.delivered", payload={}, created_at=timezone.now())
            for message in messages[:count]
        ]

    one = statements_sent(lambda: bulk_insert(events(1)))
    three = statements_sent(lambda: bulk_insert(events(3)))
    assert len(one) == 1
    assert one == three


def test_nothing_to_write_is_no_statement():
    with CaptureQueriesContext(connection) as queries:
        bulk_set([], ["status"])
    assert queries.captured_queries == []


def test_only_a_models_own_columns_can_be_set():
    with pytest.raises(ValueError, match="own columns"):
        bulk_set([MessageFactory()], ["receipts"])


def test_new_rows_are_inserted_in_one_statement_with_their_keys_set_in_order():
    from retries.feed.models import FeedEvent

    messages = MessageFactory.create_batch(3)
    now = timezone.now()
    events = [
        FeedEvent(message=message, type="message.delivered", payload={"n": i, "text": "é"}, created_at=now)
        for i, message in enumerate(messages)
    ]

    with CaptureQueriesContext(connection) as queries:
        bulk_insert(events)

    assert len(queries.captured_queries) == 1
    assert [event.pk for event in events] == sorted(event.pk for event in events)
    stored = FeedEvent.objects.in_bulk([event.pk for event in events])
    for i, event in enumerate(events):
        assert stored[event.pk].payload == {"n": i, "text": "é"}
        assert stored[event.pk].message_id == messages[i].pk
        assert stored[event.pk].webhook_id == event.webhook_id  # the field's default, made in Python
        assert not event._state.adding


def test_a_row_held_after_its_parent_gets_the_parents_new_key():
    from retries.models import Attempt, Decision

    message = MessageFactory()
    now = timezone.now()
    decision = Decision(message=message, action="retry_same", state="scheduled", why="test", created_at=now)
    attempt = Attempt(decision=decision, chain_root=message, number=1, idempotency_key="k-1", due_at=now)

    bulk_insert([decision])
    bulk_insert([attempt])

    assert Attempt.objects.get(pk=attempt.pk).decision_id == decision.pk


def test_a_row_whose_parent_was_never_saved_is_refused():
    from retries.models import Attempt, Decision

    message = MessageFactory()
    now = timezone.now()
    unsaved = Decision(message=message, action="retry_same", state="scheduled", why="test", created_at=now)
    with pytest.raises(ValueError, match="decision is not saved"):
        bulk_insert([Attempt(decision=unsaved, chain_root=message, number=1, idempotency_key="k-2", due_at=now)])


def test_a_column_left_to_its_database_default_goes_through_djangos_bulk_create():
    # flow_not_live has a database default: bulk_create knows how to leave it out.
    connection_row = MessageFactory().connection
    message = Message(
        connection=connection_row,
        provider_message_id="db-default",
        recipient="+33612345678",
        submitted_at=timezone.now(),
    )
    bulk_insert([message])
    assert Message.objects.get(pk=message.pk).flow_not_live is False
