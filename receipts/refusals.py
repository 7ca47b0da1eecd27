"""Webhooks refused, counted per connection, minute and reason: what "signature failures per
connection" alerts watch (alerts/metrics.py) and /metrics exposes.

The count is one upsert in its own short transaction, on the database the hot path already
uses, never Redis: a refused request waits on no other service and stores nothing but this
count. A counting that fails (database down) is logged and the refusal is answered anyway.
A storm of forged posts on one connection updates one row a minute per reason; the row lock
is held for the length of one UPDATE.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.db import connection as db
from django.db.models import Sum
from django.utils import timezone

from receipts.models import WebhookRefusal

logger = logging.getLogger(__name__)

# The longest alert window is a day; a week leaves room to look back at an incident.
KEEP = timedelta(days=7)

_UPSERT = (
    f"INSERT INTO {WebhookRefusal._meta.db_table} (connection_id, minute, reason, count) "  # noqa: S608
    f"VALUES (%s, %s, %s, 1) ON CONFLICT (connection_id, minute, reason) "
    f"DO UPDATE SET count = {WebhookRefusal._meta.db_table}.count + 1"
)


def refusal_count(*, connection_id: int, reason: str, now: datetime | None = None) -> None:
    """Count one refused webhook; never raises (the refusal must be answered whatever happens)."""
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    try:
        with transaction.atomic(), db.cursor() as cursor:
            cursor.execute(_UPSERT, [connection_id, minute, reason])
    except DatabaseError:
        logger.warning("refused webhook on connection %s not counted", connection_id, exc_info=True)


def refusals_by_connection(*, start: datetime, end: datetime, reason: str) -> dict[int | None, int]:
    """Refusals of `reason` in [start, end) per connection id, and in all (key None)."""
    rows = (
        WebhookRefusal.objects.filter(minute__gte=start, minute__lt=end, reason=reason)
        .values("connection_id")
        .annotate(total=Sum("count"))
        .order_by()
    )
    found: dict[int | None, int] = {row["connection_id"]: int(row["total"]) for row in rows}
    found[None] = sum(found.values())
    return found


def refusals_per_minute(
    *, start: datetime, end: datetime, reason: str, connection_id: int | None
) -> dict[datetime, int]:
    """Refusals of `reason` per minute (the alert page's chart), for one connection or all."""
    rows = WebhookRefusal.objects.filter(minute__gte=start, minute__lt=end, reason=reason)
    if connection_id is not None:
        rows = rows.filter(connection_id=connection_id)
    totals = rows.values("minute").annotate(total=Sum("count")).order_by()
    return {row["minute"]: int(row["total"]) for row in totals}


def refusals_prune(*, now: datetime) -> int:
    return WebhookRefusal.objects.filter(minute__lt=now - KEEP).delete()[0]
