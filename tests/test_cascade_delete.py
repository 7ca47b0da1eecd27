"""Set-based deletes (dlrconsole/ops/cascade.py) remove exactly what the ORM's delete would:
the same rows of the same tables, references cleared where the models say SET_NULL, refused
where they say PROTECT, and the ORM itself for models whose delete signals must run."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.deletion import Collector

from dlrconsole.ops.cascade import Protected, delete_cascading
from receipts.flows import selectors
from receipts.flows.models import Flow
from receipts.models import Message, Receipt
from retries.feed.models import ProductEndpoint
from retries.models import Attempt, Decision
from tests.factories import GENERIC_SECRET, ConnectionFactory
from tests.retention_world import message_life

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def lives(default_rules: None) -> list[Message]:
    """Two messages with a whole life each (decisions, attempts, feed events and deliveries, an
    alert), one of them with a resend, and a third left alone."""
    ConnectionFactory(slug="infobip-eu", provider="infobip", secrets=["infobip-token-0123456789abcdef"])
    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    messages = [message_life(f"life-{i}", at=NOW - timedelta(hours=3 - i)) for i in range(3)]
    first = messages[0]
    assert first is not None
    resend = Message.objects.create(
        connection=first.connection,
        provider_message_id="life-0-resend",
        recipient=first.recipient,
        submitted_at=NOW,
        chain_root=first,
    )
    Attempt.objects.filter(chain_root=first).update(resend=resend)
    return [m for m in messages if m is not None]


def orm_would_delete(model, ids) -> Counter[str]:
    collector = Collector(using=DEFAULT_DB_ALIAS)
    collector.collect(list(model._default_manager.filter(pk__in=ids)))
    counted: Counter[str] = Counter()
    for related_model, instances in collector.data.items():
        counted[related_model._meta.db_table] += len(instances)
    for qs in collector.fast_deletes:
        counted[qs.model._meta.db_table] += qs.count()
    return +counted


def test_deleting_messages_removes_the_same_rows_as_the_orm_and_clears_references(lives):
    first, second, kept = lives
    ids = [first.pk, second.pk]
    Receipt.objects.filter(message_id__in=ids).delete()  # receipts protect their messages
    expected = orm_would_delete(Message, ids)
    assert expected["retries_decision"]
    assert expected["feed_feedevent"]
    assert expected["alerts_alert"]

    with transaction.atomic():
        deleted = delete_cascading(Message, ids)

    assert +deleted == expected
    assert not Message.objects.filter(pk__in=ids).exists()
    assert not Decision.objects.filter(message_id__in=ids).exists()
    # The resend outlives its original: its chain and the attempts that sent it point nowhere.
    resend = Message.objects.get(provider_message_id="life-0-resend")
    assert resend.chain_root_id is None
    # Everything of the third message is still there.
    assert Decision.objects.filter(message=kept).exists()
    assert Receipt.objects.filter(message=kept).exists()


def test_a_message_its_receipts_still_point_at_is_refused_and_nothing_is_deleted(lives):
    first = lives[0]
    decisions = Decision.objects.filter(message=first).count()

    with pytest.raises(Protected, match=r"receipts_receipt\.message_id"), transaction.atomic():
        delete_cascading(Message, [first.pk])

    assert Message.objects.filter(pk=first.pk).exists()
    assert Decision.objects.filter(message=first).count() == decisions


def test_a_model_with_delete_receivers_goes_through_the_orm_so_they_run():
    # Flows clear the flows' cache on delete (receipts/flows/apps.py).
    flow = Flow.objects.create(slug="login-otp", name="OTP", countries=["FR"], monthly_volume=1, sla_seconds=60)
    assert "login-otp" in selectors.flow_slas()  # now cached

    with transaction.atomic():
        deleted = delete_cascading(Flow, [flow.pk])

    assert deleted["flows_flow"] == 1
    assert "login-otp" not in selectors.flow_slas()
