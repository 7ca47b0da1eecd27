"""The provider registry, built from the adapter classes: kind → adapter. Connection choices,
labels and the simulator's players are all keyed by an adapter's `kind`; adding a provider is
one module and one line here (docs/ADDING_A_PROVIDER.md)."""

from __future__ import annotations

from receipts.providers import (
    aws_sns,
    infobip,
    kannel,
    messagebird,
    plivo,
    sinch,
    smpp_text,
    standard_webhooks,
    telnyx,
    twilio,
    vonage,
)
from receipts.providers.base import ProviderAdapter

ADAPTERS: dict[str, ProviderAdapter] = {
    module.adapter.kind: module.adapter
    for module in (
        twilio, vonage, infobip, sinch, plivo, telnyx, messagebird, aws_sns, smpp_text, kannel, standard_webhooks,
    )
}  # fmt: skip


def provider_choices() -> list[tuple[str, str]]:
    return [(kind, adapter.label) for kind, adapter in ADAPTERS.items()]


def provider_label(kind: str) -> str:
    return ADAPTERS[kind].label if kind in ADAPTERS else kind


def get_adapter(kind: str) -> ProviderAdapter:
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise LookupError(f"no provider adapter for {kind!r}") from None
