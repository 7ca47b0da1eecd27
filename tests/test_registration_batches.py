"""Several messages registered at once (an attempt pass's resends): a constant number of
statements however many, each registration's own result, a conflict costing the others nothing."""

from __future__ import annotations

import pytest
from django.db import connection as db_connection
from django.db import transaction
from django.test.utils import CaptureQueriesContext

from receipts.models import Message, Receipt
from receipts.phones import parse_number
from receipts.services import MessageRegistration, RegistrationConflict, message_register, messages_register
from receipts.statuses import ReceiptOutcome, Status
from tests.factories import ConnectionFactory, MessageFactory
from tests.webhooks import generic_body, generic_headers

pytestmark = pytest.mark.django_db


def registration(connection, provider_message_id: str, number: str = "+33612345678", **fields) -> MessageRegistration:
    return MessageRegistration(
        connection=connection, provider_message_id=provider_message_id, recipient=parse_number(number), **fields
    )


def statements(registrations: list[MessageRegistration]) -> int:
    with CaptureQueriesContext(db_connection) as queries:
        messages_register(registrations)
    return len(queries.captured_queries)


def test_ten_registrations_take_the_statements_of_one():
    connection = ConnectionFactory()
    one = statements([registration(connection, "solo")])
    ten = statements([registration(connection, f"m-{i}") for i in range(10)])
    assert ten == one
    assert Message.objects.filter(connection=connection).count() == 11


def test_each_registration_gets_its_own_result_in_order():
    connection = ConnectionFactory()
    known = MessageFactory(connection=connection, provider_message_id="known", recipient="+33612345678")

    results = messages_register(
        [
            registration(connection, "new-1"),
            registration(
                connection, "known", number=known.recipient, flow=known.flow, client_reference=known.client_reference
            ),
            registration(connection, "new-2", flow="otp"),
        ]
    )

    first, again, second = results
    assert first[1]
    assert second[1]
    assert again == (known, False)
    assert (first[0].provider_message_id, second[0].provider_message_id, second[0].flow) == ("new-1", "new-2", "otp")
    assert first[0].pk
    assert second[0].pk


def test_a_conflict_is_returned_for_its_registration_and_the_others_are_registered():
    connection = ConnectionFactory()
    MessageFactory(connection=connection, provider_message_id="taken", recipient="+33612345678")

    with transaction.atomic():
        taken, fresh = messages_register(
            [registration(connection, "taken", number="+447700900123"), registration(connection, "fresh")]
        )
        # Nothing failed in the database: the caller's transaction goes on.
        assert Message.objects.filter(connection=connection).count() == 2

    assert isinstance(taken, RegistrationConflict)
    assert "different recipient" in str(taken)
    assert fresh[1] is True
    assert Message.objects.get(provider_message_id="taken").recipient == "+33612345678"  # unchanged


def test_a_conflict_leaves_a_callers_transaction_usable_without_a_savepoint():
    connection = ConnectionFactory()
    MessageFactory(connection=connection, provider_message_id="taken", recipient="+33612345678")
    with transaction.atomic(), CaptureQueriesContext(db_connection) as queries:
        with pytest.raises(RegistrationConflict):
            message_register(registration(connection, "taken", number="+447700900123"))
        MessageFactory(connection=connection, provider_message_id="after")
    assert not any("SAVEPOINT" in query["sql"] for query in queries.captured_queries)
    assert Message.objects.filter(provider_message_id="after").exists()


def test_the_same_id_twice_in_one_call_is_one_message():
    connection = ConnectionFactory()
    same, repeat, other = messages_register(
        [
            registration(connection, "twice"),
            registration(connection, "twice"),
            registration(connection, "twice", number="+447700900123"),
        ]
    )
    assert same[1] is True
    assert repeat == (same[0], False)
    assert isinstance(other, RegistrationConflict)
    assert Message.objects.filter(provider_message_id="twice").count() == 1


def test_receipts_that_came_first_are_applied_to_the_message_registered_for_them(client):
    connection = ConnectionFactory()
    body = generic_body("early", "delivered")
    headers = generic_headers(connection, body)
    client.post(f"/hooks/{connection.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers)
    assert Receipt.objects.get().outcome == ReceiptOutcome.PARKED

    (early, created), (late, _) = messages_register(
        [registration(connection, "early"), registration(connection, "late")]
    )

    assert created
    assert early.status == Status.DELIVERED
    assert late.status == Status.QUEUED
    assert Receipt.objects.get().message == early
