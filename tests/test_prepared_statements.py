"""The ORM's queries bind their parameters on the server and, run again and again on one
connection, are prepared once: PostgreSQL stops parsing and planning the worker's every query
(its CPU a run fell from 30 to 24 s at 300 receipts/s). Behind a pooler that cannot keep
prepared statements nothing is prepared, and binding stays on the server (PgBouncer passes the
extended protocol in every pool mode)."""

from __future__ import annotations

import pytest
from django.db import connection

from receipts.models import Message
from tests.factories import MessageFactory
from tests.settings_probe import PRODUCTION, settings_with

POSTGRES = {**PRODUCTION, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/probe"}


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_an_orm_query_run_again_and_again_is_prepared_on_its_connection() -> None:
    messages = MessageFactory.create_batch(6)
    for message in messages:  # different values, the same statement
        assert Message.objects.filter(pk=message.pk).values_list("status", flat=True).get() == message.status
    wanted = [s for s in _prepared() if '"receipts_message"."status"' in s and '"receipts_message"."id" = $1' in s]
    assert len(wanted) == 1


def test_production_binds_on_the_server_and_prepares_after_five_runs() -> None:
    options = "s.DATABASES['default']['OPTIONS']"
    assert settings_with(POSTGRES, options) == "{'server_side_binding': True, 'prepare_threshold': 5}"
    pooled = settings_with({**POSTGRES, "DLR_DB_TRANSACTION_POOLING": "1"}, options)
    assert pooled == "{'server_side_binding': True}"
