"""A minimal receipt endpoint, the floor the project's webhook is measured against.

It does the same database work as the project for a new receipt, in one transaction: the
idempotent INSERT of the receipt (linked to its message by the same join) and the conditional
UPDATE of the message's status. It does nothing else: no signature check, no adapter, no
outbox row, no broker publish, no per-request connection lookup (the slug's id is read once per
process). It trusts its input; it exists only for bench/ingest_throughput.py.
"""

from __future__ import annotations

import json

from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

# Precedence, lowest first, and the final statuses (copied, not imported: no project code here).
PRECEDENCE = ("queued", "accepted", "sent", "unknown", "expired", "failed", "rejected", "undelivered", "delivered")
FINAL = frozenset({"delivered", "undelivered", "expired", "rejected", "failed"})
KEPT_HEADERS = ("content-type", "user-agent", "webhook-id", "webhook-timestamp")

INSERT_SQL = """
INSERT INTO receipts_receipt (
    connection_id, provider_message_id, dedupe_key, provider_status, status, error_code,
    error_description, provider_timestamp, received_at, raw_body, headers, message_id, outcome
)
SELECT %s, %s, %s, %s, %s, '', '', NULL, %s, %s, %s, m.id,
       CASE WHEN m.id IS NULL THEN 'parked' ELSE 'applied' END
FROM (SELECT 1) AS one
LEFT JOIN receipts_message m ON m.connection_id = %s AND m.provider_message_id = %s
ON CONFLICT (connection_id, dedupe_key) DO NOTHING
RETURNING id, message_id
"""


def update_sql(status: str) -> str:
    """The conditional UPDATE: the status moves only from a status ranked below it."""
    below = ", ".join(f"'{s}'" for s in PRECEDENCE[: PRECEDENCE.index(status)])
    final = ", final_at = %(now)s" if status in FINAL else ""
    return (
        "UPDATE receipts_message SET status = %(status)s, error_code = '', reason = '', error_class = '',"
        " status_changed_at = %(now)s, first_receipt_at = COALESCE(first_receipt_at, %(now)s)"
        f"{final} WHERE id = %(id)s AND status IN ({below})"
    )


UPDATE_SQL = {status: update_sql(status) for status in PRECEDENCE[1:]}  # nothing moves to queued

_connection_ids: dict[str, int] = {}


def _connection_id(slug: str) -> int:
    if slug not in _connection_ids:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM receipts_connection WHERE slug = %s", [slug])
            _connection_ids[slug] = cursor.fetchone()[0]
    return _connection_ids[slug]


@csrf_exempt
def receipt(request: HttpRequest, slug: str) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    body = request.body
    data = json.loads(body)["data"]
    message_id, status = data["message_id"], data["status"]
    headers = {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
    connection_id = _connection_id(slug)
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            INSERT_SQL,
            [
                connection_id,
                message_id,
                request.headers["webhook-id"],
                status,
                status,
                now,
                body.decode(),
                json.dumps(headers, separators=(",", ":")),
                connection_id,
                message_id,
            ],
        )
        row = cursor.fetchone()
        if row is not None and row[1] is not None and status in UPDATE_SQL:
            cursor.execute(UPDATE_SQL[status], {"status": status, "now": now, "id": row[1]})
    return JsonResponse({"received": 1, "duplicates": 0 if row else 1})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"database": "ok"})


urlpatterns = [
    path("healthz", healthz),
    path("hooks/<slug:slug>/", receipt),
]
