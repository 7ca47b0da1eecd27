"""Sinch SMS REST API (XMS) delivery report callbacks.

Docs: https://developers.sinch.com/docs/sms/api-reference/sms/tag/Delivery-reports/ and
https://developers.sinch.com/docs/sms/api-reference/sms/tag/Webhooks/
Shapes as in Sinch's SDK contract fixtures (sinch-sdk-java `DeliveryReportRecipientSMSDto.json`,
`DeliveryReportBatchSMSDto.json`):

- `recipient_delivery_report_sms` (batches sent with `delivery_report: per_recipient` or
  `per_recipient_final`): one recipient's status, with `batch_id`, `recipient`, `status`, `code`,
  `at` (created at Sinch), `operator_status_at`, `client_reference`;
- `delivery_report_sms` (`summary` or `full`): the batch's counts per (status, code); `full`
  adds the recipients of each. Each listed recipient becomes one event. A `summary` report lists
  none: counts cannot say which message a status belongs to, so it yields no event (200,
  received 0). Ask Sinch for `per_recipient` or `full` reports.

The provider message id is the `batch_id` the send API returned: the product sends one batch
per message (one recipient) and registers the Message with that id. Every report of a batch with
several recipients lands on the message registered under the batch id; the recipient is part of
each event's dedupe key, so two recipients' reports are never taken for one retried report.

Sinch XMS callbacks are not signed: they authenticate with Basic credentials (or OAuth) set up
by Sinch's account manager, which TokenAuthenticated checks as `user:password`. Sinch retries
5xx and 429 for ~22 h and never other 4xx.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from receipts.providers.base import (
    PayloadError,
    ReceiptEvent,
    TokenAuthenticated,
    WebhookRequest,
    clean_network,
    compact_json,
    parse_iso_timestamp,
)
from receipts.statuses import Status

RECIPIENT_TYPES = ("recipient_delivery_report_sms", "recipient_delivery_report_mms")
BATCH_TYPES = ("delivery_report_sms", "delivery_report_mms")
# Codes that are states, not errors: 0 delivered, 400 queued, 401 dispatched.
NOT_ERRORS = frozenset({"0", "400", "401"})

# https://developers.sinch.com/docs/sms/api-reference/sms/tag/Delivery-reports/ (statuses)
STATUS_MAP: dict[str, Status] = {
    "queued": Status.ACCEPTED,
    # Dispatched may be skipped when a final status comes first (Sinch says so).
    "dispatched": Status.SENT,
    "delivered": Status.DELIVERED,
    "failed": Status.UNDELIVERED,
    # Deleted by a remote SMSC, e.g. an invalid or opted-out number: a carrier's negative answer.
    "deleted": Status.UNDELIVERED,
    "aborted": Status.REJECTED,
    "rejected": Status.REJECTED,
    # Cancelled by the user before reaching the SMSC: a failure on our side, not the carrier's.
    "cancelled": Status.FAILED,
    "expired": Status.EXPIRED,
    # "Delivered to SMSC but no DR received or DR couldn't be interpreted".
    "unknown": Status.UNKNOWN,
}


class SinchAdapter(TokenAuthenticated):
    kind = "sinch"
    label = "Sinch SMS"
    status_map = STATUS_MAP
    # A batch's `to` takes up to 1000 numbers, so a full report lists at most that many.
    max_events = 1000

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        payload = request.json()
        if not isinstance(payload, dict):
            raise PayloadError("body must be a JSON object")
        report_type = payload.get("type")
        batch_id = payload.get("batch_id")
        if not isinstance(batch_id, str) or not batch_id:
            raise PayloadError("`batch_id` must be a non-empty string")
        if report_type in RECIPIENT_TYPES:
            return [self._recipient_event(payload, batch_id)]
        if report_type in BATCH_TYPES:
            return self._batch_events(payload, batch_id)
        raise PayloadError(f"`type` {str(report_type)[:40]!r} is not a Sinch delivery report")

    def _recipient_event(self, payload: dict[str, Any], batch_id: str) -> ReceiptEvent:
        recipient, status = payload.get("recipient"), payload.get("status")
        if not isinstance(recipient, str) or not recipient:
            raise PayloadError("`recipient` must be a non-empty string")
        if not isinstance(status, str) or not status:
            raise PayloadError("`status` must be a non-empty string")
        # The operator's time is when it happened; `at` is when Sinch wrote the report.
        timestamp = parse_iso_timestamp(payload.get("operator_status_at")) or parse_iso_timestamp(payload.get("at"))
        return self._event(
            batch_id,
            recipient,
            status,
            payload.get("code"),
            timestamp,
            client_reference=payload.get("client_reference"),
            operator=payload.get("operator"),
        )

    def _batch_events(self, payload: dict[str, Any], batch_id: str) -> list[ReceiptEvent]:
        statuses = payload.get("statuses")
        if not isinstance(statuses, list):
            raise PayloadError("`statuses` must be a list")
        events: list[ReceiptEvent] = []
        for index, entry in enumerate(statuses):
            if not isinstance(entry, dict) or not isinstance(entry.get("status"), str) or not entry["status"]:
                raise PayloadError(f"statuses[{index}] must be an object with a `status`")
            recipients = entry.get("recipients", [])
            if not isinstance(recipients, list) or not all(isinstance(r, str) and r for r in recipients):
                raise PayloadError(f"statuses[{index}].recipients must be a list of phone numbers")
            if len(events) + len(recipients) > self.max_events:
                raise PayloadError(f"the report lists more than {self.max_events} recipients")
            for recipient in recipients:
                event = self._event(
                    batch_id,
                    recipient,
                    entry["status"],
                    entry.get("code"),
                    None,
                    raw=_own_part(payload, entry, recipient),
                    client_reference=payload.get("client_reference"),
                )
                events.append(event)
        if len(events) == 1:
            # The only recipient: the whole report is its own, client reference and all.
            return [replace(events[0], raw="")]
        return events

    def _event(
        self,
        batch_id: str,
        recipient: str,
        status: str,
        code: object,
        timestamp: datetime | None,
        *,
        raw: str = "",
        client_reference: object = None,
        operator: object = None,
    ) -> ReceiptEvent:
        if code is not None and (isinstance(code, bool) or not isinstance(code, int | str)):
            raise PayloadError("`code` must be a number")
        error_code = "" if code is None or str(code) in NOT_ERRORS else str(code)
        return ReceiptEvent(
            provider_message_id=batch_id,
            provider_status=status,
            status=self.normalize_status(status),
            error_code=error_code,
            provider_timestamp=timestamp,
            event_id=event_id(batch_id, recipient, status, error_code, timestamp),
            raw=raw,
            extra={"recipient": recipient, "client_reference": client_reference, "operator": operator},
            # "The operator that was used for delivering the message to this recipient, if
            # enabled on the account by Sinch" (an MCCMNC); recipient reports only. No price.
            network=clean_network(operator),
        )


def _own_part(payload: dict[str, Any], entry: dict[str, Any], recipient: str) -> str:
    """The report cut to this recipient, stored with its event instead of the whole body. It
    keeps what identifies the report (type, batch id) and this recipient's status and code; the
    rest (the client reference, counts, any other field) is the same for every recipient and is
    not repeated in each of their rows: a 1 MiB report of 50 recipients stored 50 MiB so."""
    own = {
        "type": payload.get("type"),
        "batch_id": payload.get("batch_id"),
        "statuses": [{"code": entry.get("code"), "status": entry.get("status"), "count": 1, "recipients": [recipient]}],
    }
    return compact_json(own)


def event_id(batch_id: str, recipient: str, status: str, code: str, timestamp: datetime | None) -> str:
    """Sinch gives no event id; the default dedupe key would leave out the recipient, and two
    recipients of one batch reaching the same status at once would look like one retried report."""
    identity = [batch_id, recipient.lstrip("+"), status, code, timestamp.isoformat() if timestamp else ""]
    return "sha256:" + hashlib.sha256(json.dumps(identity).encode()).hexdigest()


adapter = SinchAdapter()
