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
from django_guid import get_guid

from receipts.models import OutboxEvent
from receipts.outbox import outbox_process_batch
from tests.factories import MessageFactory
from tests.webhooks import generic_body, generic_headers
from tests.worker import celery_worker, wait_until

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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_id_of_a_webhook_request_is_in_the_log_of_the_decision_task_it_caused(client, default_rules):
    message = MessageFactory()
    body = generic_body(message.provider_message_id, "undelivered", error_code=ABSENT_SUBSCRIBER)
    headers = generic_headers(message.connection, body)
    request_id = uuid.uuid4().hex
    with celery_worker() as worker:
        response = client.post(
            f"/hooks/{message.connection.slug}/",
            data=body,
            content_type=headers.pop("content-type"),
            headers={**headers, "X-Request-ID": request_id},
        )
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
