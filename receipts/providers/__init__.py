"""The provider registry: provider kind → adapter. Model choices come from here."""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from receipts.providers.base import ProviderAdapter

# kind → module under receipts.providers; each module defines `adapter`.
PROVIDER_MODULES: dict[str, str] = {
    "twilio": "twilio",
    "vonage": "vonage",
    "infobip": "infobip",
    "sinch": "sinch",
    "plivo": "plivo",
    "telnyx": "telnyx",
    "messagebird": "messagebird",
    "aws-sns": "aws_sns",
    "smpp-text": "smpp_text",
    "kannel": "kannel",
    "standard-webhooks": "standard_webhooks",
}
PROVIDER_LABELS: dict[str, str] = {
    "twilio": "Twilio",
    "vonage": "Vonage (Nexmo) SMS API",
    "infobip": "Infobip",
    "sinch": "Sinch SMS",
    "plivo": "Plivo",
    "telnyx": "Telnyx",
    "messagebird": "MessageBird (Bird) SMS",
    "aws-sns": "AWS End User Messaging SMS (via SNS)",
    "smpp-text": "SMPP receipt text over HTTP",
    "kannel": "Kannel dlr-url",
    "standard-webhooks": "Standard Webhooks (generic JSON)",
}


def provider_choices() -> list[tuple[str, str]]:
    return list(PROVIDER_LABELS.items())


@cache
def get_adapter(kind: str) -> ProviderAdapter:
    try:
        module_name = PROVIDER_MODULES[kind]
    except KeyError:
        raise LookupError(f"no provider adapter for {kind!r}") from None
    adapter: ProviderAdapter = import_module(f"receipts.providers.{module_name}").adapter
    return adapter
