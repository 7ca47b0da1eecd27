"""Infobip SMS delivery reports (webhook, JSON).

Docs: https://www.infobip.com/docs/api/channels/sms/sms-messaging/logs-and-status-reports/receive-outbound-sms-message-report
Infobip posts `{"results": [...]}`, one report per message, by default up to 100 per request
(`maxBucketSize` of the subscription). It does not sign its reports: the connection's secret is
a token Infobip presents, in the notify URL's path (/hooks/<slug>/<token>/) or as Basic
credentials written into it (TokenAuthenticated); pair it with Infobip's published addresses.

Each report is one event, stored with its own part of the body. One unreadable report refuses
the whole request (400, nothing stored): Infobip keeps the batch and it can be looked at whole.
Reports carry no event id; a retry is recognised by (messageId, status, error id, doneAt).
"""

from __future__ import annotations

from typing import Any

from receipts.providers.base import (
    PayloadError,
    ReceiptEvent,
    TokenAuthenticated,
    WebhookRequest,
    clean_currency,
    clean_network,
    clean_price,
    parse_iso_timestamp,
)
from receipts.statuses import Status

# Status names, and their groups (1 PENDING, 2 UNDELIVERABLE, 3 DELIVERED, 4 EXPIRED, 5 REJECTED):
# https://www.infobip.com/docs/developer-resources/api-fundamentals/message-status-codes
STATUS_MAP: dict[str, Status] = {
    "pending_accepted": Status.ACCEPTED,
    # Waiting for delivery / enroute: Infobip has handed the message on to the operator.
    "pending_waiting_delivery": Status.SENT,
    "pending_enroute": Status.SENT,
    "delivered_to_operator": Status.SENT,
    "delivered_to_handset": Status.DELIVERED,
    # The operator never sent a final report: Infobip does not know the outcome (not `expired`).
    "expired_dlr_unknown": Status.UNKNOWN,
}
# A name not listed above falls back on its group: the one that prefixes it, else the report's
# own `status.groupId` (or `groupName`), which names like SIGNALS_BLOCKED and MISSING_TO (both in
# group 5 REJECTED) carry without a prefix. DELIVERED (group 3) is not here: its members differ
# (to operator = sent, to handset = delivered), so an unknown one stays unknown. Peers mapped
# EXPIRED to sent (providers.md §0): an expired message was not delivered.
GROUP_STATUS: dict[str, Status] = {
    "pending": Status.ACCEPTED,
    "undeliverable": Status.UNDELIVERED,
    "expired": Status.EXPIRED,
    "rejected": Status.REJECTED,
}
GROUP_IDS: dict[int, str] = {1: "pending", 2: "undeliverable", 3: "delivered", 4: "expired", 5: "rejected"}


class InfobipAdapter(TokenAuthenticated):
    kind = "infobip"
    label = "Infobip"
    # Infobip ids 1-36 are MAP errors; its own rows list only some.
    shared_code_tables = ("gsm",)
    status_map = STATUS_MAP
    # Far above any maxBucketSize seen in practice (default 100); a body beyond it is not Infobip's.
    max_events = 1000

    def normalize_status(self, provider_status: str, group: str = "") -> Status:
        """By the status name, then by its group: the name's prefix, else `group` (the report's
        groupId or groupName, lower-cased). A report carrying only its group is stored under the
        group's name, which this reads back."""
        name = provider_status.strip().lower()
        if name in STATUS_MAP:
            return STATUS_MAP[name]
        for candidate in (name.partition("_")[0], group):
            if candidate in GROUP_STATUS:
                return GROUP_STATUS[candidate]
        return Status.UNKNOWN

    def parse_events(self, request: WebhookRequest) -> list[ReceiptEvent]:
        payload, parts = request.json_parts("results")
        results = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(results, list) or not results:
            raise PayloadError("body must be an object with a non-empty `results` list")
        if len(results) > self.max_events:
            raise PayloadError(f"`results` holds more than {self.max_events} reports")
        assert parts is not None  # loads_json_parts gives the parts of a list
        return [self._event(item, index, raw) for index, (item, raw) in enumerate(zip(results, parts, strict=True))]

    def _event(self, item: object, index: int, raw: str) -> ReceiptEvent:
        if not isinstance(item, dict):
            raise PayloadError(f"results[{index}] is not an object")
        message_id = item.get("messageId")
        status = item.get("status")
        if not isinstance(message_id, str) or not message_id:
            raise PayloadError(f"results[{index}].messageId must be a non-empty string")
        if not isinstance(status, dict):
            status = {}
        group = status_group(status)
        # A report may carry only its group (no `name`): the group name stands for the status.
        name = status.get("name") or status.get("groupName")
        if not isinstance(name, str) or not name:
            raise PayloadError(f"results[{index}].status.name (or groupName) must be a non-empty string")
        error = item.get("error")
        if not isinstance(error, dict):
            error = {}
        code = error_code(error)
        price = item.get("price")
        if not isinstance(price, dict):
            price = {}
        permanent = error.get("permanent")
        return ReceiptEvent(
            provider_message_id=message_id,
            provider_status=name,
            status=self.normalize_status(name, group),
            error_code=code,
            error_description=str(error.get("description") or error.get("name") or "")[:255] if code else "",
            provider_timestamp=parse_iso_timestamp(item.get("doneAt")),
            # The provider's own word on the failure, which wins over our catalog's class.
            permanent=permanent if code and isinstance(permanent, bool) else None,
            raw=raw,
            extra={key: item.get(key) for key in ("bulkId", "to", "callbackData", "price", "mccMnc") if key in item},
            network=clean_network(item.get("mccMnc")),
            # `pricePerMessage`, in `currency`. Whether a message of several parts (smsCount > 1)
            # costs it once or per part the report docs do not say [U]: kept as reported.
            price=clean_price(price.get("pricePerMessage")),
            currency=clean_currency(price.get("currency")),
        )


def status_group(status: dict[str, Any]) -> str:
    """The report's status group, lower-cased: by `groupId` when it is one of Infobip's five,
    else by `groupName`; "" when neither says."""
    group_id = status.get("groupId")
    if isinstance(group_id, int) and not isinstance(group_id, bool) and group_id in GROUP_IDS:
        return GROUP_IDS[group_id]
    name = status.get("groupName")
    return name.strip().lower() if isinstance(name, str) else ""


def error_code(error: dict[str, Any]) -> str:
    """`error.id` as a string; empty for NO_ERROR (group 0, id 0), which every report carries."""
    code, group = error.get("id"), error.get("groupId")
    if code is None or isinstance(code, bool) or not isinstance(code, int | str):
        return ""
    if group in (0, "0") or str(code) == "0":
        return ""
    return str(code)


adapter = InfobipAdapter()
