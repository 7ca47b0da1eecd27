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
    "standard-webhooks": "standard_webhooks",
}
PROVIDER_LABELS: dict[str, str] = {
    "twilio": "Twilio",
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
