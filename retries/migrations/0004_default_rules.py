"""The rule set the product first shipped, as it was then: migrations are frozen, so this is a
copy (retries/default_rules.py holds today's, which later migrations lead to)."""

from typing import Any

from django.db import migrations

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


def create_default_rules(apps, schema_editor):
    Rule = apps.get_model("retries", "Rule")
    if Rule.objects.exists():
        return
    for fields in DEFAULT_RULES:
        Rule.objects.create(**fields)


class Migration(migrations.Migration):
    dependencies = [("retries", "0003_rules_decisions_attempts")]

    operations = [migrations.RunPython(create_default_rules, migrations.RunPython.noop)]
