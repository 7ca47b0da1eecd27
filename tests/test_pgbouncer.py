"""Transaction pooling: the console and the workers run through a real PgBouncer
(pool_mode = transaction) with DLR_DB_TRANSACTION_POOLING=1: receipts are stored and decided, a
batch of receipts too (its statements bound on the server, unprepared), and the CSV export
streams a search larger than one of its batches."""

from __future__ import annotations

import csv
import io

import pytest
import requests
from django.db import connection

from dlrconsole import roles
from receipts.exports import EXPORT_BATCH_SIZE
from receipts.models import Message, OutboxEvent
from retries.models import Decision
from tests.factories import ConnectionFactory, MessageFactory, user_in_role
from tests.processes import gunicorn_server, pgbouncer
from tests.webhooks import generic_body, generic_headers
from tests.worker import celery_worker, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ABSENT_SUBSCRIBER = "27"  # GSM MAP: temporary, retried by the shipped rules


def test_the_console_and_the_workers_run_through_a_transaction_pooling_pgbouncer(client, default_rules):
    hooked = ConnectionFactory()
    failed, delivered = MessageFactory(connection=hooked), MessageFactory(connection=hooked)
    many = EXPORT_BATCH_SIZE + 500
    Message.objects.bulk_create(MessageFactory.build_batch(many, connection=hooked))
    batching = ConnectionFactory(provider="infobip", secrets=["infobip-token-0123456789abcdef"])
    batched = MessageFactory.create_batch(2, connection=batching)
    client.force_login(user_in_role(roles.SUPPORT))
    session = client.cookies["sessionid"].value
    database = connection.settings_dict["NAME"]

    with pgbouncer() as bouncer:
        through_bouncer = {"DATABASE_URL": bouncer.url(database), "DLR_DB_TRANSACTION_POOLING": "1"}
        with gunicorn_server(env=through_bouncer) as web, celery_worker(env=through_bouncer):
            for message, status, fields in (
                (failed, "undelivered", {"error_code": ABSENT_SUBSCRIBER}),
                (delivered, "delivered", {}),
            ):
                body = generic_body(message.provider_message_id, status, **fields)
                reply = requests.post(f"{web}/hooks/{hooked.slug}/", data=body,
                                      headers=generic_headers(hooked, body), timeout=30)  # fmt: skip
                assert reply.status_code == 200, reply.text
            reports = [
                {"messageId": pmid, "status": {"groupId": 3, "name": "DELIVERED_TO_HANDSET"}, "error": {"id": 0}}
                for pmid in [m.provider_message_id for m in batched] + ["not-registered-yet"]
            ]
            reply = requests.post(f"{web}/hooks/{batching.slug}/", json={"results": reports},
                                  headers={"x-dlr-token": batching.secrets[0]}, timeout=30)  # fmt: skip
            assert reply.status_code == 200, reply.text
            assert reply.json() == {"received": 3, "duplicates": 0, "applied": 2, "parked": 1}
            assert wait_until(lambda: Decision.objects.filter(message=failed).exists(), timeout=60)
            assert wait_until(lambda: not OutboxEvent.objects.filter(processed_at__isnull=True).exists(), timeout=60)

            export = requests.get(f"{web}/console/messages/export.csv", cookies={"sessionid": session},
                                  stream=True, timeout=60)  # fmt: skip
            assert export.status_code == 200
            rows = list(csv.reader(io.StringIO(export.content.decode())))
        pooled = bouncer.transactions(database)

    everyone = many + 2 + len(batched)
    assert len(rows) == 1 + everyone  # the header, then every message, over several keyset batches
    assert len({row[0] for row in rows[1:]}) == everyone
    assert Message.objects.get(pk=delivered.pk).status == "delivered"
    assert [m.status for m in Message.objects.filter(connection=batching)] == ["delivered", "delivered"]
    assert pooled > 10  # the web process and the worker did go through the pooler
