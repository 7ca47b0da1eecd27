"""A batch of reports in one request (Infobip posts up to 1,000) is stored set-based: the same
outcomes as the reports posted one by one, in a number of statements that does not grow with
the batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection as db
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from receipts import store
from receipts.models import Message, OutboxEvent, Receipt, RollupPending
from receipts.phones import parse_number
from receipts.services import MessageRegistration, message_register
from receipts.statuses import ReceiptOutcome, Status
from tests.factories import ConnectionFactory, MessageFactory

pytestmark = pytest.mark.django_db
# Just after the reports' fixed times (2026-11-26): a provider's time more than a day ahead of our
# clock is not kept (receipts/providers/base.py), so the clock stands here, ticking, whatever the
# day the suite runs.
REPORTS_SENT = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock_after_the_reports() -> Iterator[None]:
    with time_machine.travel(REPORTS_SENT, tick=True):
        yield


# Infobip's status names for our statuses (receipts/providers/infobip.py).
INFOBIP_STATUS = {
    "accepted": ("PENDING_ACCEPTED", 1),
    "sent": ("DELIVERED_TO_OPERATOR", 3),
    "delivered": ("DELIVERED_TO_HANDSET", 3),
    "undelivered": ("UNDELIVERABLE_NOT_DELIVERED", 2),
    "expired": ("EXPIRED_EXPIRED", 4),
}


def report(message_id: str, status: str, *, done_at: str = "2026-11-26T11:00:01.500+0000", **extra: object) -> dict:
    name, group = INFOBIP_STATUS[status]
    error = {"id": 27, "name": "EC_ABSENT_SUBSCRIBER", "permanent": False} if status == "undelivered" else {"id": 0}
    return {
        "messageId": message_id, "doneAt": done_at, "smsCount": 1,
        "status": {"groupId": group, "name": name}, "error": error, **extra,
    }  # fmt: skip


def post_reports(client: Client, connection, reports: list[dict]):
    body = json.dumps({"results": reports})
    return client.post(
        f"/hooks/{connection.slug}/", data=body, content_type="application/json",
        headers={"x-dlr-token": connection.secrets[0]},
    )  # fmt: skip


def infobip_connection():
    return ConnectionFactory(provider="infobip", secrets=["infobip-token-0123456789abcdef"])


def statements_for_batch(client: Client, size: int) -> int:
    connection = infobip_connection()
    messages = [MessageFactory(connection=connection) for _ in range(size)]
    stored_before = [report(m.provider_message_id, "sent") for m in messages[: size // 2]]
    assert post_reports(client, connection, stored_before).status_code == 200
    # Half already stored (a provider's retry), a message not registered yet, and two reports
    # of one message.
    reports = stored_before + [report(m.provider_message_id, "delivered") for m in messages]
    reports += [report("not-registered-yet", "delivered"), report(messages[0].provider_message_id, "undelivered")]
    with CaptureQueriesContext(db) as queries:
        response = post_reports(client, connection, reports)
    assert response.status_code == 200, response.content
    assert response.json()["duplicates"] == len(stored_before)
    return len(queries)


@pytest.mark.parametrize("prepared", [True, False])
def test_a_batch_is_stored_in_the_same_number_of_statements_whatever_its_size(client, settings, prepared):
    # The batch's own statements run on a cursor of their own, wrapped as Django's so they count.
    settings.DLR_DB_PREPARED_STATEMENTS = prepared
    statements_for_batch(client, 2)  # the per-process caches (error catalog overrides) filled
    small, large = statements_for_batch(client, 4), statements_for_batch(client, 300)
    assert small == large
    # The transaction's two; the messages read and locked; the parked one's identity lock and a
    # look again; the receipts; the messages with their outbox and rollup rows.
    assert large == 7


def test_a_batch_ends_as_its_reports_posted_one_by_one(client):
    one_by_one, batched = infobip_connection(), infobip_connection()
    sequence = [
        ("a", "sent", {}), ("a", "delivered", {"price": {"pricePerMessage": 0.03, "currency": "EUR"}}),
        ("a", "sent", {}), ("b", "undelivered", {}), ("b", "expired", {}), ("b", "delivered", {}),
        ("c", "delivered", {}), ("c", "delivered", {}), ("parked", "sent", {}), ("d", "accepted", {}),
    ]  # fmt: skip
    for connection in (one_by_one, batched):
        for pmid in "abcd":
            MessageFactory(connection=connection, provider_message_id=pmid)
    reports = [report(pmid, status, done_at=f"2026-11-26T11:00:0{i}.000+0000", **extra)
               for i, (pmid, status, extra) in enumerate(sequence)]  # fmt: skip
    # "c" delivered twice with the same time: the second is the same report again.
    reports[7]["doneAt"] = reports[6]["doneAt"]
    for item in reports:
        post_reports(client, one_by_one, [item])
    response = post_reports(client, batched, reports)

    assert response.json() == {"received": 10, "duplicates": 1, "applied": 6, "late": 1, "conflict": 1, "parked": 1}

    def state(connection):
        messages = {
            m.provider_message_id: (m.status, m.error_class, m.reason, m.cost, m.currency, m.first_receipt_at)
            for m in Message.objects.filter(connection=connection)
        }
        receipts = list(Receipt.objects.filter(connection=connection).order_by("id").values_list("status", "outcome"))
        outbox = list(
            OutboxEvent.objects.filter(message__connection=connection).order_by("id").values_list("status", flat=True)
        )
        return messages, receipts, outbox

    def without_times(state):
        messages, receipts, outbox = state
        return {pmid: (*m[:5], m[5] is not None) for pmid, m in messages.items()}, receipts, outbox

    assert without_times(state(batched)) == without_times(state(one_by_one))
    messages, _, outbox = state(batched)
    assert messages["a"][0] == messages["b"][0] == Status.DELIVERED
    assert messages["a"][3] == Decimal("0.03")
    assert messages["b"][1] == ""  # a late delivery replaced the failure's class
    assert outbox == ["sent", "delivered", "undelivered", "delivered", "delivered", "accepted"]
    assert Receipt.objects.get(connection=batched, provider_message_id="parked").outcome == ReceiptOutcome.PARKED


def test_a_batchs_parked_report_is_linked_when_its_message_is_registered(client):
    connection = infobip_connection()
    known = MessageFactory(connection=connection)
    post_reports(client, connection, [report(known.provider_message_id, "sent"), report("early", "delivered")])

    message, _ = message_register(
        MessageRegistration(connection=connection, provider_message_id="early", recipient=parse_number("+33612345678"))
    )

    assert message.status == Status.DELIVERED
    assert Receipt.objects.get(provider_message_id="early").outcome == ReceiptOutcome.APPLIED


def test_every_message_a_batch_touches_is_queued_once_for_the_rollups(client):
    connection = infobip_connection()
    messages = [MessageFactory(connection=connection) for _ in range(3)]
    RollupPending.objects.all().delete()
    post_reports(
        client, connection, [report(m.provider_message_id, s) for m in messages for s in ("sent", "delivered")]
    )
    assert sorted(RollupPending.objects.values_list("message_id", flat=True)) == sorted(m.pk for m in messages)


@pytest.mark.parametrize("prepared", [True, False])
def test_a_batch_stores_each_reports_own_text_as_it_came(client, settings, prepared):
    # The batch's arrays go to the server in binary: nothing is escaped on the way, so text an
    # array literal would have to quote (quotes, backslashes, braces, commas, "NULL") is kept
    # as sent. All parked and none priced: arrays holding only NULLs.
    settings.DLR_DB_PREPARED_STATEMENTS = prepared
    connection = infobip_connection()
    awkward = ['say "hi", {ok}', 'back\\slash \\"', "NULL", "émoji 📨 ü", ""]
    reports = [report(f"unregistered-{i}", "sent", callbackData=text) for i, text in enumerate(awkward)]

    response = post_reports(client, connection, reports)

    assert response.json() == {"received": 5, "duplicates": 0, "parked": 5}
    stored = Receipt.objects.filter(connection=connection).order_by("id")
    assert [json.loads(r.raw_body) for r in stored] == reports
    assert [(r.message_id, r.price, r.currency) for r in stored] == [(None, None, "")] * 5
    assert stored[0].headers["content-type"] == "application/json"


def prepared_batch_runs() -> dict[str, int]:
    """How often each of the batch statements prepared on this connection ran, by first words."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%unnest%"],
        )
        runs: dict[str, int] = {}
        for sql, count in cursor.fetchall():
            key = " ".join(sql.split()[:3])
            runs[key] = runs.get(key, 0) + count
        return runs


@pytest.mark.parametrize("prepared", [True, False])
def test_a_batchs_statements_are_prepared_on_the_connection_unless_turned_off(client, settings, prepared):
    settings.DLR_DB_PREPARED_STATEMENTS = prepared  # off behind a pooler that cannot keep them
    connection = infobip_connection()
    messages = [MessageFactory(connection=connection) for _ in range(2)]
    before = prepared_batch_runs()

    response = post_reports(client, connection, [report(m.provider_message_id, "delivered") for m in messages])

    assert response.json()["applied"] == 2
    after = prepared_batch_runs()
    ran = {key: count - before.get(key, 0) for key, count in after.items() if count != before.get(key, 0)}
    assert ran == ({"INSERT INTO receipts_receipt": 1, "WITH moved AS": 1} if prepared else {})


def test_a_batchs_message_writes_bind_what_the_one_by_one_statements_bind():
    # The set-based statement reads each write's parameters as a row (store._write_row); the
    # statement-by-statement backend reads them one by one (store._write_value): the same values.
    now = timezone.now()  # any time: only carried through to the parameters
    change = store.StatusChange(
        status="undelivered", error_code="27", reason="absent_subscriber", error_class="temporary",
        catalog_class="temporary", class_source="catalog", final_at=now, now=now, network="20801",
        price=Decimal("0.030000"), currency="EUR",
    )  # fmt: skip
    writes = [
        store.MessageWrite(1, change, "20810", Decimal("0.020000"), "USD", now),
        store.MessageWrite(2, None, "", None, "", now),
    ]
    for write in writes:
        assert store._write_row(write) == tuple(store._write_value(write, name) for name in store._WRITE_PARAMS)
    assert store._write_row(writes[0])[store._WRITE_PARAMS.index("network")] == "20810"
    assert store._write_row(writes[1])[store._WRITE_PARAMS.index("status")] is None
