"""Models that moved between apps keep their rows: a database holding data in the previous
schema (the outbox and the product feed in retries) is migrated and read back through the new
apps (receipts' outbox, the feed app), links, permissions and audit entries included."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection
from django.utils import timezone

from tests.factories import GENERIC_SECRET

BEFORE = [
    ("audit", "0002_index_by_username"),
    ("receipts", "0009_console_search_indexes"),
    ("retries", "0007_configuration_history"),
]
AFTER = [
    ("receipts", "0010_outbox_moves_to_receipts"),
    ("retries", "0009_feed_moves_to_its_app"),
    ("feed", "0001_initial"),
]


def tables() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


@pytest.mark.django_db(transaction=True)
def test_the_outbox_and_the_feed_keep_their_rows_links_and_permissions_when_they_move(migrator):
    old = migrator.apply_initial_migration(BEFORE)
    now = timezone.now()
    Connection = old.apps.get_model("receipts", "Connection")
    Message = old.apps.get_model("receipts", "Message")
    connection_ = Connection.objects.create(slug="generic", provider="standard-webhooks", secrets=[GENERIC_SECRET])
    message = Message.objects.create(
        connection=connection_, provider_message_id="m-1", recipient="+33612345678", submitted_at=now
    )
    event = old.apps.get_model("retries", "OutboxEvent").objects.create(
        message=message, kind="status_changed", status="undelivered", created_at=now, processed_at=now
    )
    decision = old.apps.get_model("retries", "Decision").objects.create(
        message=message, outbox_event=event, action="notify", state="recorded", why="rule “notify”", created_at=now
    )
    endpoint = old.apps.get_model("retries", "ProductEndpoint").objects.create(
        name="product", url="https://product.example/feed", secret=GENERIC_SECRET
    )
    feed_event = old.apps.get_model("retries", "FeedEvent").objects.create(
        type="message.failed", message=message, payload={"type": "message.failed"}, created_at=now
    )
    delivery = old.apps.get_model("retries", "FeedDelivery").objects.create(
        event=feed_event, endpoint=endpoint, message=message, status="delivered", attempts=1, delivered_at=now
    )
    old.apps.get_model("retries", "FeedAttempt").objects.create(
        delivery=delivery, number=1, attempted_at=now, status_code=200, duration_ms=12
    )
    old.apps.get_model("audit", "AuditEntry").objects.create(
        at=now, model="retries.productendpoint", model_name="product endpoint", object_id=str(endpoint.pk),
        object_repr="product", action="created",
    )  # fmt: skip
    ContentType = old.apps.get_model("contenttypes", "ContentType")
    Permission = old.apps.get_model("auth", "Permission")
    Group = old.apps.get_model("auth", "Group")
    delivery_type, _ = ContentType.objects.get_or_create(app_label="retries", model="feeddelivery")
    can_read, _ = Permission.objects.get_or_create(
        content_type=delivery_type, codename="view_feeddelivery", defaults={"name": "Can view feed delivery"}
    )
    Group.objects.create(name="Product").permissions.add(can_read)

    new = migrator.apply_tested_migration(AFTER)

    assert {"receipts_outboxevent", "feed_productendpoint", "feed_feeddelivery"} <= tables()
    assert not {"retries_outboxevent", "retries_productendpoint", "retries_feeddelivery"} & tables()
    moved_event = new.apps.get_model("receipts", "OutboxEvent").objects.get()
    assert (moved_event.pk, moved_event.message_id, moved_event.status) == (event.pk, message.pk, "undelivered")
    assert new.apps.get_model("retries", "Decision").objects.get(pk=decision.pk).outbox_event_id == event.pk
    moved_delivery = new.apps.get_model("feed", "FeedDelivery").objects.get()
    assert (moved_delivery.pk, moved_delivery.endpoint_id, moved_delivery.event_id) == (
        delivery.pk, endpoint.pk, feed_event.pk,
    )  # fmt: skip
    assert new.apps.get_model("feed", "FeedAttempt").objects.get().delivery_id == delivery.pk
    assert new.apps.get_model("feed", "ProductEndpoint").objects.get().secret == GENERIC_SECRET
    assert new.apps.get_model("audit", "AuditEntry").objects.get().model == "feed.productendpoint"
    product = new.apps.get_model("auth", "Group").objects.get(name="Product")
    assert list(product.permissions.values_list("content_type__app_label", "codename")) == [
        ("feed", "view_feeddelivery")
    ]


@pytest.mark.django_db(transaction=True)
def test_skipped_decisions_get_their_skip_reason_from_the_words_they_were_recorded_with(migrator):
    old = migrator.apply_initial_migration([("retries", "0009_feed_moves_to_its_app")])
    now = timezone.now()
    connection_ = old.apps.get_model("receipts", "Connection").objects.create(
        slug="generic", provider="standard-webhooks", secrets=[GENERIC_SECRET]
    )
    message = old.apps.get_model("receipts", "Message").objects.create(
        connection=connection_, provider_message_id="m-1", recipient="+33612345678", submitted_at=now
    )
    Decision = old.apps.get_model("retries", "Decision")
    words = {
        "the chain was already delivered": "chain_delivered",
        "this message was already retried": "already_retried",
        "3 of 3 attempts already made": "max_attempts",
        "past the 3600 s deadline": "deadline",
        "no other connection configured on the rule": "no_target",
        "no fallback channel configured on the rule": "no_target",
    }
    for why in words:
        Decision.objects.create(message=message, action="retry_same", state="skipped", why=why, created_at=now)
    Decision.objects.create(message=message, action="notify", state="recorded", why="rule “notify”", created_at=now)

    new = migrator.apply_tested_migration([("retries", "0010_decision_skip_reason")])

    migrated = dict(new.apps.get_model("retries", "Decision").objects.values_list("why", "skip_reason"))
    assert migrated == {**words, "rule “notify”": ""}


@pytest.mark.django_db(transaction=True)
def test_secrets_stored_in_clear_are_encrypted_by_the_migration_and_read_back(migrator):
    old = migrator.apply_initial_migration(
        [
            ("receipts", "0011_outbox_failures"),
            ("retries", "0010_decision_skip_reason"),
            ("feed", "0002_endpoint_url_outbound"),
        ]
    )
    connection_ = old.apps.get_model("receipts", "Connection").objects.create(
        slug="generic", provider="standard-webhooks", secrets=[GENERIC_SECRET]
    )
    sender = old.apps.get_model("retries", "ConnectionSender").objects.create(
        connection=connection_, kind="generic-http", config={"url": "https://gw.example/send", "api_key": "k-123"}
    )
    endpoint = old.apps.get_model("feed", "ProductEndpoint").objects.create(
        name="product", url="https://product.example/feed", secret=GENERIC_SECRET
    )

    new = migrator.apply_tested_migration(
        [
            ("receipts", "0013_connection_secrets_encrypted"),
            ("retries", "0011_sender_configs_encrypted"),
            ("feed", "0003_secret_encrypted"),
        ]
    )

    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM receipts_connection")
        assert cursor.fetchone()[0].startswith("gAAAAA")
    assert new.apps.get_model("receipts", "Connection").objects.get(pk=connection_.pk).secrets == [GENERIC_SECRET]
    assert new.apps.get_model("retries", "ConnectionSender").objects.get(pk=sender.pk).config["api_key"] == "k-123"
    assert new.apps.get_model("feed", "ProductEndpoint").objects.get(pk=endpoint.pk).secret == GENERIC_SECRET


@pytest.mark.django_db(transaction=True)
def test_receipts_poisoned_before_times_were_checked_are_repaired_and_read_back(migrator):
    old = migrator.apply_initial_migration([("receipts", "0013_connection_secrets_encrypted")])
    now = timezone.now()
    year_zero = datetime(1, 1, 1, tzinfo=dt_timezone(timedelta(hours=1)))  # 0000-12-31 23:00 UTC: unreadable
    connection_ = old.apps.get_model("receipts", "Connection").objects.create(
        slug="generic", provider="standard-webhooks", secrets=[GENERIC_SECRET]
    )
    message = old.apps.get_model("receipts", "Message").objects.create(
        connection=connection_, provider_message_id="m-1", recipient="+33612345678", submitted_at=now,
        status="delivered", final_at=year_zero, status_changed_at=now,
    )  # fmt: skip
    old.apps.get_model("receipts", "Receipt").objects.create(
        connection=connection_, message=message, provider_message_id="m-1", dedupe_key="k", provider_status="delivered",
        status="delivered", provider_timestamp=year_zero, received_at=now, outcome="applied",
    )  # fmt: skip

    new = migrator.apply_tested_migration([("receipts", "0014_repair_unreadable_times")])

    receipt = new.apps.get_model("receipts", "Receipt").objects.get()
    assert receipt.provider_timestamp is None
    assert new.apps.get_model("receipts", "Message").objects.get().final_at == now
