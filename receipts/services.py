"""Writes that span models: registering messages and configuring connections."""

from __future__ import annotations

from collections.abc import Sequence
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
    registering its id with another recipient, flow or reference is a conflict (raised).
    """
    result = messages_register([registration])[0]
    if isinstance(result, RegistrationConflict):
        raise result
    return result


def messages_register(
    registrations: Sequence[MessageRegistration],
) -> list[tuple[Message, bool] | RegistrationConflict]:
    """Register several submitted messages at once (a pass's resends), with a constant number
    of statements: the identity locks, the look-up, one INSERT, the rollup queue, the parked
    receipts' look-up. Per registration, in order: (message, created) or its conflict.

    A conflict writes nothing and is returned, not raised, so the caller's transaction stays
    usable without a savepoint (two round trips a registration); the others are registered."""
    identities = [(r.connection.pk, r.provider_message_id) for r in registrations]
    listed = {
        (connection_id, country): prices.listed_price(connection_id=connection_id, country=country)
        for connection_id, country in {(r.connection.pk, r.recipient.country) for r in registrations}
    }
    with transaction.atomic(savepoint=False):
        store.lock_message_identities(identities)
        found = store.messages_by_identity(identities)
        new: dict[tuple[int, str], Message] = {}
        for identity, r in zip(identities, registrations, strict=True):
            if identity not in found and identity not in new:
                new[identity] = _new_message(r, listed[(r.connection.pk, r.recipient.country)])
        created = dict(zip(new, store.messages_create(list(new.values())), strict=True))
        parked = store.identities_with_parked_receipts(created) if created else set()
        for identity in parked:
            if link_parked_receipts(created[identity]):
                created[identity].refresh_from_db()  # the receipts that came first moved it
    results: list[tuple[Message, bool] | RegistrationConflict] = []
    first = set(created)  # the registration that created a message gets `created`; a repeat does not
    for identity, r in zip(identities, registrations, strict=True):
        if identity in first:
            first.discard(identity)
            results.append((created[identity], True))
            continue
        message = found.get(identity) or created[identity]
        if (message.recipient, message.flow, message.client_reference) != (
            r.recipient.e164,
            r.flow,
            r.client_reference,
        ):
            results.append(
                RegistrationConflict(
                    f"message {r.provider_message_id!r} is already registered on {r.connection.slug!r} "
                    "with a different recipient, flow or client reference"
                )
            )
        else:
            results.append((message, False))
    return results


def _new_message(r: MessageRegistration, listed: prices.Price | None) -> Message:
    return Message(
        connection=r.connection,
        provider_message_id=r.provider_message_id,
        recipient=r.recipient.e164,
        country=r.recipient.country,
        flow=r.flow,
        client_reference=r.client_reference,
        submitted_at=r.submitted_at or timezone.now(),
        body=r.body,
        fallback_email=r.fallback_email,
        chain_root=r.chain_root,
        # A resend belongs to its original's launch, which was judged at registration.
        flow_not_live=r.chain_root is None and flow_not_live(r.flow),
        # Until a receipt says what the provider charged.
        cost=listed.price if listed else None,
        currency=listed.currency if listed else "",
    )


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
