"""The rule set a new installation starts with; admins edit it from there.

- a delivery or a missing receipt: tell the product;
- the number itself is the problem (unknown, invalid, landline) or the recipient opted out:
  never retry, tell the product;
- the route is the problem (permanent, but another route may pass): retry on another
  connection, once one is configured (until then the decision says so);
- a temporary failure: retry on the same connection with backoff, 3 attempts within an hour.
"""

from __future__ import annotations

from typing import Any

NUMBER_OR_CONSENT_REASONS = [
    "unknown_subscriber", "invalid_number", "illegal_subscriber", "landline", "opted_out", "age_restricted",
]  # fmt: skip
ROUTE_REASONS = ["destination_not_enabled", "unroutable", "carrier_rejected"]

DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "Delivered: tell the product", "position": 10, "statuses": ["delivered"], "action": "notify"},
    {"name": "No receipt: tell the product", "position": 20, "statuses": ["no_receipt"], "action": "notify"},
    {
        "name": "Number or opt-out problem: never retry, tell the product",
        "position": 30,
        "reasons": NUMBER_OR_CONSENT_REASONS,
        "action": "notify",
    },
    {
        "name": "Route problem: retry on another connection",
        "position": 40,
        "reasons": ROUTE_REASONS,
        "action": "retry_other",
        "max_attempts": 1,
        "backoff_seconds": [0],
    },
    {
        "name": "Temporary failure: retry on the same connection with backoff",
        "position": 50,
        "error_classes": ["temporary"],
        "action": "retry_same",
        "max_attempts": 3,
        "backoff_seconds": [60, 300, 900],
        "deadline_seconds": 3600,
    },
    {
        "name": "Other permanent failure: tell the product",
        "position": 60,
        "error_classes": ["permanent", "unknown"],
        "action": "notify",
    },
]
