"""CSV export of a search: streamed in keyset batches, masked per role, safe in spreadsheets."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from receipts.exports import csv_safe, export_rows
from receipts.models import Message
from receipts.search import message_batches
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db
EXPORT = reverse("console:export")


def _rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_export_streams_a_header_and_every_matching_row_newest_first(support: Client) -> None:
    now = timezone.now()
    older = MessageFactory(flow="signup", recipient="+33612345678", submitted_at=now - timedelta(minutes=1))
    newer = MessageFactory(flow="signup", status="delivered", final_at=now, submitted_at=now)
    MessageFactory(flow="other")
    response = support.get(EXPORT, {"flow": "signup"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="messages-')
    header, *rows = _rows(response)
    assert header[:6] == ["id", "submitted_at", "connection", "provider_message_id", "recipient", "country"]
    assert [int(row[0]) for row in rows] == [newer.pk, older.pk]
    assert rows[1][4] == "+33612345678"  # validated E.164: exported as is, not as a formula
    assert rows[0][header.index("status")] == "delivered"
    assert rows[0][header.index("final_at")] == now.isoformat()


def test_viewers_export_masked_numbers(viewer: Client) -> None:
    MessageFactory(recipient="+33612345678")
    header, row = _rows(viewer.get(EXPORT))
    assert row[header.index("recipient")] == "+336•••••678"


def test_the_export_takes_the_search_box_too(viewer: Client) -> None:
    wanted = MessageFactory(client_reference="order-7")
    MessageFactory()
    _, *rows = _rows(viewer.get(EXPORT, {"q": "order-7"}))
    assert [int(row[0]) for row in rows] == [wanted.pk]


def test_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted(support: Client) -> None:
    MessageFactory(client_reference='=HYPERLINK("http://evil","x")', flow="f")
    header, row = _rows(support.get(EXPORT))
    assert row[header.index("client_reference")] == '\'=HYPERLINK("http://evil","x")'
    assert [csv_safe(v) for v in ("+1", "-1", "@SUM(A1)", "\tx", "plain", None)] == [
        "'+1", "'-1", "'@SUM(A1)", "'\tx", "plain", ""
    ]  # fmt: skip


def test_a_bad_search_is_refused_with_the_reason(support: Client) -> None:
    response = support.get(EXPORT, {"connection": "nope"})
    assert response.status_code == 400
    assert "connection" in response.content.decode()


def test_batches_cover_every_row_once_across_timestamp_ties() -> None:
    now = timezone.now()
    made = [MessageFactory(submitted_at=now - timedelta(seconds=i // 4)) for i in range(23)]
    expected = [m.pk for m in sorted(made, key=lambda m: (m.submitted_at, m.pk), reverse=True)]
    assert [row[0] for row in message_batches(Message.objects.all(), "id", batch_size=5)] == expected


def test_the_export_reads_one_keyset_batch_per_query(django_assert_num_queries) -> None:
    for _ in range(25):
        MessageFactory()
    with django_assert_num_queries(3):  # batches of 10, 10 and 5
        rows = list(export_rows(Message.objects.all(), see_numbers=False, batch_size=10))
    assert len(rows) == 26
