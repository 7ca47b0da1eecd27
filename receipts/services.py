"""Writes that span models: registering messages and configuring connections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from receipts import prices, store
from receipts.flows.selectors import flow_not_live
from receipts.ingestion import link_parked_receipts
from receipts.models import Connection, Message
from receipts.phones import PhoneNumber


class RegistrationConflict(Exception):
    """The provider message id is already registered with different details."""


@dataclass(frozen=True)
class MessageRegistration:
    connection: Connection
    provider_message_id: str
    recipient: PhoneNumber
    flow: str = ""
    client_reference: str = ""
    submitted_at: datetime | None = None
    body: str = ""
    fallback_email: str = ""
    # For a resend: the original message of its attempt chain.
    chain_root: Message | None = None


def message_register(registration: MessageRegistration) -> tuple[Message, bool]:
    """Register a submitted message, idempotently; apply receipts that arrived before it.

    Returns (message, created). Registering the same message again returns it unchanged;
    registering its id with another recipient, flow or reference is a conflict.
    """
    r = registration
    listed = prices.listed_price(connection_id=r.connection.pk, country=r.recipient.country)
    # Nested in a caller's transaction this is a savepoint: a conflict leaves the caller's
    # transaction usable (a resend records its send all the same, retries/actions/resending.py).
    with transaction.atomic():
        store.lock_message_identity(r.connection.pk, r.provider_message_id)
        message, created = store.message_get_or_create(
            connection=r.connection,
            provider_message_id=r.provider_message_id,
            defaults={
                "recipient": r.recipient.e164,
                "country": r.recipient.country,
                "flow": r.flow,
                "client_reference": r.client_reference,
                "submitted_at": r.submitted_at or timezone.now(),
                "body": r.body,
                "fallback_email": r.fallback_email,
                "chain_root": r.chain_root,
                # A resend belongs to its original's launch, which was judged at registration.
                "flow_not_live": r.chain_root is None and flow_not_live(r.flow),
                # Until a receipt says what the provider charged.
                "cost": listed.price if listed else None,
                "currency": listed.currency if listed else "",
            },
        )
        if created and link_parked_receipts(message):
            message.refresh_from_db()  # the receipts that came first moved it
        elif (message.recipient, message.flow, message.client_reference) != (
            r.recipient.e164,
            r.flow,
            r.client_reference,
        ):
            raise RegistrationConflict(
                f"message {r.provider_message_id!r} is already registered on {r.connection.slug!r} "
                "with a different recipient, flow or client reference"
            )
    return message, created


def connection_create(
    *,
    slug: str,
    provider: str,
    secrets: list[str],
    name: str = "",
    public_url: str = "",
    options: dict[str, Any] | None = None,
    allowed_ips: list[str] | None = None,
) -> Connection:
    """Create a connection; its secrets and options are checked against the provider's scheme."""
    connection = Connection(
        slug=slug,
        provider=provider,
        name=name,
        secrets=secrets,
        public_url=public_url,
        options=options or {},
        allowed_ips=allowed_ips or [],
    )
    connection.full_clean()
    connection.save()
    return connection
