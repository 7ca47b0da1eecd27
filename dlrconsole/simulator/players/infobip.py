"""Plays Infobip: JSON delivery reports `{"results": [...]}` to the notify URL, final reports
only (Infobip reports the outcome, not the way there), no signature: the connection's token is
in the URL path, as written into the notify URL.

Reports: https://www.infobip.com/docs/api/channels/sms/sms-messaging/logs-and-status-reports/receive-outbound-sms-message-report
Statuses: https://www.infobip.com/docs/developer-resources/api-fundamentals/message-status-codes
Errors, with their `permanent` flag (providers.md §3.3):
https://www.infobip.com/docs/developer-resources/api-fundamentals/error-code-reference
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from dlrconsole.simulator.base import Delivery, Event, Failure, OutgoingRequest, Player, Step, token_url

# Status name → (groupId, groupName, id).
STATUSES: dict[str, tuple[int, str, int]] = {
    "DELIVERED_TO_HANDSET": (3, "DELIVERED", 5),
    "UNDELIVERABLE_NOT_DELIVERED": (2, "UNDELIVERABLE", 9),
    "UNDELIVERABLE_REJECTED_OPERATOR": (2, "UNDELIVERABLE", 4),
    "EXPIRED_EXPIRED": (4, "EXPIRED", 15),
    "REJECTED_NETWORK": (5, "REJECTED", 6),
}
# Error id → (groupId, name, permanent), as Infobip lists them.
ERRORS: dict[str, tuple[int, str, bool]] = {
    "1": (1, "EC_UNKNOWN_SUBSCRIBER", True),
    "11": (1, "EC_TELESERVICE_NOT_PROVISIONED", True),
    "13": (1, "EC_CALL_BARRED", False),
    "27": (1, "EC_ABSENT_SUBSCRIBER", False),
    "31": (1, "EC_SUBSCRIBER_BUSY_FOR_MT_SMS", False),
    "34": (3, "EC_SYSTEM_FAILURE", False),
    "256": (1, "EC_SM_DF_MEMORYCAPACITYEXCEEDED", False),
    "603": (2, "EC_CONTENT_BLOCKED", True),
    "607": (3, "EC_REJECTED_SPAM_BY_OPERATOR", True),
}

ERROR_GROUPS = {0: "OK", 1: "HANDSET_ERRORS", 2: "USER_ERRORS", 3: "OPERATOR_ERRORS"}


class InfobipPlayer(Player):
    kind = "infobip"
    delivered = "DELIVERED_TO_HANDSET"
    expired = Failure("EXPIRED_EXPIRED", "", "Message expired")
    failures = {
        "absent_subscriber": Failure("UNDELIVERABLE_NOT_DELIVERED", "27", "Absent subscriber"),
        "unknown_subscriber": Failure("UNDELIVERABLE_NOT_DELIVERED", "1", "Unknown subscriber"),
        "handset_busy": Failure("UNDELIVERABLE_NOT_DELIVERED", "31", "Subscriber busy for MT SMS"),
        "memory_full": Failure("UNDELIVERABLE_NOT_DELIVERED", "256", "Memory capacity exceeded"),
        "network_error": Failure("UNDELIVERABLE_NOT_DELIVERED", "34", "System failure"),
        "call_barred": Failure("UNDELIVERABLE_REJECTED_OPERATOR", "13", "Call barred"),
        "blocked_spam": Failure("REJECTED_NETWORK", "607", "Rejected as spam by the operator", early=True),
        "opted_out": Failure("UNDELIVERABLE_REJECTED_OPERATOR", "603", "Content blocked (opt-out)"),
        "landline": Failure("UNDELIVERABLE_NOT_DELIVERED", "11", "Teleservice not provisioned"),
    }

    def message_id(self, rng: random.Random) -> str:
        h = f"{rng.getrandbits(160):040x}"
        return f"{h[:12]}-{h[12:16]}-{h[16:21]}-{h[21:25]}-{h[25:37]}"

    def in_flight(self, rng: random.Random) -> list[Step]:
        return []  # Infobip's report is the outcome; it posts nothing before it

    def request(self, delivery: Delivery) -> OutgoingRequest:
        body = json.dumps({"results": [self._report(delivery, event) for event in delivery.events]}).encode()
        return OutgoingRequest(
            method="POST",
            url=token_url(delivery.webhook_url, delivery.secret),
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": "Infobip"},
        )

    def _report(self, delivery: Delivery, event: Event) -> dict[str, object]:
        plan = delivery.plan
        group_id, group_name, status_id = STATUSES[event.provider_status]
        error_group, error_name, permanent = ERRORS.get(event.error_code, (0, "NO_ERROR", False))
        return {
            "bulkId": f"bulk-{plan.provider_message_id[:12]}",
            "messageId": plan.provider_message_id,
            "to": plan.recipient.lstrip("+"),
            "sentAt": _infobip_time(plan.submitted_at),
            "doneAt": _infobip_time(event.at),
            "smsCount": 1,
            "callbackData": plan.client_reference,
            "price": {"pricePerMessage": 0.01, "currency": "EUR"},
            "status": {
                "groupId": group_id,
                "groupName": group_name,
                "id": status_id,
                "name": event.provider_status,
                "description": event.error_description or "Message delivered to handset",
            },
            "error": {
                "groupId": error_group,
                "groupName": ERROR_GROUPS[error_group],
                "id": int(event.error_code or 0),
                "name": error_name,
                "description": event.error_description or "No Error",
                "permanent": permanent,
            },
        }


def _infobip_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


player = InfobipPlayer()
