"""The rule set a new installation starts with; admins edit it from there.

- a delivery or a missing receipt: tell the product;
- the number itself is the problem (unknown, invalid, landline) or the recipient opted out:
  never retry, tell the product;
- the route is the problem (permanent, but another route may pass): tell the product; an admin
  who has a second connection adds a retry on it (a shipped rule never names a connection);
- a temporary failure: retry on the same connection with waits of 1, 5 and 15 minutes within an
  hour; the product hears it failed when the retries are spent.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

NUMBER_OR_CONSENT_REASONS = [
    "unknown_subscriber", "invalid_number", "illegal_subscriber", "landline", "opted_out", "age_restricted",
]  # fmt: skip
ROUTE_REASONS = ["destination_not_enabled", "unroutable", "carrier_rejected"]
NOTIFY = [{"action": "notify"}]

DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "Delivered: tell the product", "position": 10, "statuses": ["delivered"], "steps": NOTIFY},
    {"name": "No receipt: tell the product", "position": 20, "statuses": ["no_receipt"], "steps": NOTIFY},
    {
        "name": "Number or opt-out problem: never retry, tell the product",
        "position": 30,
        "reasons": NUMBER_OR_CONSENT_REASONS,
        "steps": NOTIFY,
    },
    {
        "name": "Route problem: tell the product",
        "position": 40,
        "reasons": ROUTE_REASONS,
        "steps": NOTIFY,
    },
    {
        "name": "Temporary failure: retry on the same connection with backoff",
        "position": 50,
        "error_classes": ["temporary"],
        "deadline_seconds": 3600,
        "steps": [{"action": "retry_same", "count": 3, "delays": [60, 300, 900]}],
    },
    {
        "name": "Other permanent failure: tell the product",
        "position": 60,
        "error_classes": ["permanent", "unknown"],
        "steps": NOTIFY,
    },
]


def install_default_rules(rule_model: Any, step_model: Any) -> None:
    """Create the shipped rules (the models are given: migrations pass their historical ones)."""
    with transaction.atomic():
        for fields in DEFAULT_RULES:
            fields = dict(fields)
            steps = fields.pop("steps")
            rule = rule_model.objects.create(**fields)
            for position, step in enumerate(steps, start=1):
                step_model.objects.create(rule=rule, position=position, **step)
