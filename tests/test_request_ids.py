"""Every request has an id (the proxy's X-Request-ID when it is a valid one, else a new one),
returned in the response and carried into the Celery tasks the request causes, so a receipt's
webhook and the decision taken on it share one id in the logs."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from django.utils import timezone
from django_guid import clear_guid, get_guid, set_guid

from dlrconsole.lib.request_id import MAX_LENGTH
from receipts.ingestion import ingest
from receipts.models import OutboxEvent
from receipts.outbox import outbox_process_batch, outbox_redispatch, publisher
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.statuses import Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.webhooks import generic_body, generic_headers
from tests.worker import broker, celery_worker, wait_until

ABSENT_SUBSCRIBER = "27"
NEW_ID = re.compile(r"[0-9a-f]{32}")


def test_a_valid_request_id_from_the_proxy_is_kept_and_returned(client):
    given = uuid.uuid4().hex
    assert client.get("/healthz", headers={"X-Request-ID": given})["X-Request-ID"] == given


def test_a_uuid_with_dashes_is_kept_too(client):
    given = str(uuid.uuid4())
    assert client.get("/healthz", headers={"X-Request-ID": given})["X-Request-ID"] == given


@pytest.mark.parametrize("given", ["not-an-id", "x" * 500, "0f3c1d2e\nINFO forged log line", "../../etc/passwd"])
def test_anything_else_is_replaced_by_a_new_id(client, given):
    returned = client.get("/healthz", headers={"X-Request-ID": given})["X-Request-ID"]
    assert NEW_ID.fullmatch(returned)


def test_a_request_without_one_gets_a_new_id_each_time(client):
    first, second = client.get("/healthz")["X-Request-ID"], client.get("/healthz")["X-Request-ID"]
    assert NEW_ID.fullmatch(first)
    assert first != second


class IdsAtEmit(logging.Handler):
    """Records the request id in force when each line is logged."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.getMessage(), get_guid()))


@pytest.mark.django_db
def test_each_event_of_a_batch_is_decided_under_its_own_webhooks_id(default_rules):
    first, second = MessageFactory(status="sent"), MessageFactory(status="sent")
    events = [
        OutboxEvent.objects.create(
            message=m, kind=OutboxEvent.Kind.STATUS_CHANGED, status="delivered", created_at=timezone.now()
        )
        for m in (first, second)
    ]
    handler = IdsAtEmit()
    logging.getLogger("retries.decisions").addHandler(handler)
    try:
        outbox_process_batch(
            [e.pk for e in events], request_ids={str(events[0].pk): "a" * 32, str(events[1].pk): "b" * 32}
        )
    finally:
        logging.getLogger("retries.decisions").removeHandler(handler)
    assert [(text.split()[1], rid) for text, rid in handler.lines] == [
        (str(first.pk), "a" * 32),
        (str(second.pk), "b" * 32),
    ]
    assert get_guid() is None  # nothing left bound afterwards


@pytest.mark.django_db
def test_events_processed_without_the_header_are_decided_under_the_id_their_row_keeps(default_rules):
    """As when the sweeper publishes them: its task carries no request ids."""
    first, second = MessageFactory(status="sent"), MessageFactory(status="sent")
    events = [
        OutboxEvent.objects.create(
            message=m, kind=OutboxEvent.Kind.STATUS_CHANGED, status="delivered", created_at=timezone.now(),
            request_id=request_id,
        )
        for m, request_id in ((first, "c" * 32), (second, "d" * 32))
    ]  # fmt: skip
    handler = IdsAtEmit()
    logging.getLogger("retries.decisions").addHandler(handler)
    try:
        outbox_process_batch([e.pk for e in events])
    finally:
        logging.getLogger("retries.decisions").removeHandler(handler)
    assert [(text.split()[1], rid) for text, rid in handler.lines] == [
        (str(first.pk), "c" * 32),
        (str(second.pk), "d" * 32),
    ]


def post_with_id(client, connection, body: bytes, request_id: str):
    headers = generic_headers(connection, body)
    return client.post(
        f"/hooks/{connection.slug}/",
        data=body,
        content_type=headers.pop("content-type"),
        headers={**headers, "X-Request-ID": request_id},
    )


def batch_body(messages, status: str) -> bytes:
    events = [{"message_id": m.provider_message_id, "status": status} for m in messages]
    return json.dumps({"type": "message.status", "data": events}).encode()


@pytest.mark.django_db
@pytest.mark.parametrize("receipts", [1, 3])  # one round trip, or a batch's set-based statements
def test_the_outbox_rows_a_webhook_writes_keep_its_request_id(client, receipts):
    connection = ConnectionFactory()
    messages = [MessageFactory(connection=connection) for _ in range(receipts)]
    body = (
        generic_body(messages[0].provider_message_id, "delivered")
        if receipts == 1
        else batch_body(messages, "delivered")
    )
    request_id = str(uuid.uuid4())
    assert post_with_id(client, connection, body, request_id).status_code == 200
    assert list(OutboxEvent.objects.values_list("request_id", flat=True)) == [request_id] * receipts


def ingest_outside_a_request(message) -> None:
    """What a command or script storing a receipt does: no request, no task."""
    request = WebhookRequest(method="POST", url="https://dlr.example/hooks/x/", headers={}, body=b"{}")
    event = ReceiptEvent(
        provider_message_id=message.provider_message_id, provider_status="DELIVRD", status=Status.DELIVERED
    )
    ingest(connection=message.connection, request=request, events=[event], headers={})


@pytest.mark.django_db
def test_a_receipt_stored_outside_any_request_leaves_the_events_request_id_empty():
    message = MessageFactory()
    assert get_guid() is None
    ingest_outside_a_request(message)
    assert OutboxEvent.objects.get(message=message).request_id == ""


@pytest.mark.django_db
def test_an_id_too_long_to_be_one_of_ours_is_left_out_of_the_row_not_refused():
    """A task takes its id from its header unchecked."""
    message = MessageFactory()
    set_guid("x" * (MAX_LENGTH + 1))
    try:
        ingest_outside_a_request(message)
    finally:
        clear_guid()
    assert OutboxEvent.objects.get(message=message).request_id == ""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_id_of_a_webhook_request_is_in_the_log_of_the_decision_task_it_caused(client, default_rules):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "undelivered", error_code=ABSENT_SUBSCRIBER)
    request_id = uuid.uuid4().hex
    with celery_worker() as worker:
        response = post_with_id(client, message.connection, body, request_id)
        assert response.status_code == 200
        assert wait_until(lambda: decision_lines(worker.output_lines, message.pk), timeout=30), worker.output_lines[
            -30:
        ]
    assert [line["request_id"] for line in decision_lines(worker.output_lines, message.pk)] == [request_id]


def decision_lines(output: list[str], message_id: int) -> list[dict]:
    found = []
    for line in list(output):
        if not line.startswith("{"):
            continue  # the worker's start-up banner
        record = json.loads(line)
        if record["logger"] == "retries.decisions" and record["message"].startswith(f"message {message_id} "):
            found.append(record)
    return found


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_decision_on_an_event_the_sweeper_published_after_a_broker_outage_logs_the_webhooks_id(
    client, default_rules, redis_client
):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "undelivered", error_code=ABSENT_SUBSCRIBER)
    request_id = uuid.uuid4().hex
    with broker("redis://127.0.0.1:1/0"):  # a closed port: the publish is refused
        assert post_with_id(client, message.connection, body, request_id).status_code == 200
        assert publisher.wait_idle(timeout=30)
    event = OutboxEvent.objects.get()
    assert (event.dispatched_at, event.request_id) == (None, request_id)  # left for the sweeper
    with celery_worker() as worker:
        # The sweeper runs under no request of its own here; in production under its task's id.
        assert outbox_redispatch() == 1
        assert wait_until(lambda: decision_lines(worker.output_lines, message.pk), timeout=30), worker.output_lines[
            -30:
        ]
    assert [line["request_id"] for line in decision_lines(worker.output_lines, message.pk)] == [request_id]
