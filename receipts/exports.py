"""CSV exports of message searches: streamed, any size, safe to open in a spreadsheet."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet

from receipts.models import Message
from receipts.phones import mask_number
from receipts.search import message_batches

COLUMNS = (
    ("id", "id"),
    ("submitted_at", "submitted_at"),
    ("connection", "connection__slug"),
    ("provider_message_id", "provider_message_id"),
    ("recipient", "recipient"),
    ("country", "country"),
    ("flow", "flow"),
    ("client_reference", "client_reference"),
    ("status", "status"),
    ("error_code", "error_code"),
    ("reason", "reason"),
    ("error_class", "error_class"),
    ("first_receipt_at", "first_receipt_at"),
    ("final_at", "final_at"),
)
# Rows per keyset query: large enough that a million rows is 500 queries, small enough that
# one batch is a few MB however wide the rows.
EXPORT_BATCH_SIZE = 2000
RECIPIENT = [header for header, _ in COLUMNS].index("recipient")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Except a recipient: stored as validated E.164, masked or not it is "+" and digits (or •), which
# no spreadsheet runs; BI tools need it as is.
NUMBER = re.compile(r"\+[0-9•]{7,15}")


def csv_safe(value: object) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_rows(
    messages: QuerySet[Message], *, see_numbers: bool, batch_size: int = EXPORT_BATCH_SIZE
) -> Iterator[list[str]]:
    """The header, then one row per message, newest first; numbers masked unless `see_numbers`."""
    yield [header for header, _ in COLUMNS]
    for row in message_batches(messages, *(field for _, field in COLUMNS), batch_size=batch_size):
        cells = list(row)
        recipient = cells[RECIPIENT] if see_numbers else mask_number(cells[RECIPIENT])
        safe = [csv_safe(cell) for cell in cells]
        safe[RECIPIENT] = recipient if NUMBER.fullmatch(recipient) else csv_safe(recipient)
        yield safe
