"""Re-normalize stored receipts after a mapping or catalog change.

Receipts keep their raw body, so what an adapter or the error catalog says of them can be
asked again: each stored receipt is parsed anew by its connection's adapter and classified by
the catalog, through the same functions ingestion uses (`ProviderAdapter.parse`,
`ingestion.status_change_for`); nothing here maps a status or a code itself. A receipt whose
reading changed is restated, and so is its message: its state is decided again from all of
its receipts by the precedence ingestion applies (receipts/statuses.py), the receipt of
highest rank winning and, among equals, the first to arrive.

Restating corrects the record; it is not a new event. No outbox row is written, so no rule
runs again and no decision, attempt or notification is made. Restated messages are queued for
the rollups (`store.messages_restate`), like any other change of a message, and their ids are
returned for any other aggregate kept over messages.

It also fills in what receipts stored before an adapter read it: the network and the price
(a message takes them from its receipts as ingestion gives them, the last receipt that names
one winning; without any, the price list's cost it was registered with stays).

Receipts are read in batches by id, so memory stays bounded whatever the table's size; each
batch is written in its own transaction, with its messages' rows locked while they are read
and restated.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from receipts import store
from receipts.ingestion import final_time, status_change_for
from receipts.models import Connection, Message, Receipt
from receipts.providers.base import ControlMessage, ReceiptEvent, WebhookError, WebhookRequest
from receipts.providers.registry import ADAPTERS
from receipts.statuses import RANK, is_final
from receipts.store import MessageRestatement, ReceiptRestatement

DEFAULT_BATCH = 1000
EXAMPLES = 5
# A stand-in for the URL the provider called: parsing reads the query of a GET, never the host.
STORED_URL = "https://stored.invalid/"
# The normalized columns a re-reading may change, in the order the report shows them.
COMPARED = ("status", "reason", "error_class")


@dataclass
class ConnectionTally:
    examined: int = 0
    unreadable: int = 0
    receipts_changed: int = 0
    messages_changed: int = 0
    networks_changed: int = 0
    prices_changed: int = 0
    # ("status", "unknown", "rejected") -> how many receipts changed so.
    changes: Counter[tuple[str, str, str]] = field(default_factory=Counter)


@dataclass
class RenormalizeReport:
    applied: bool
    connections: dict[str, ConnectionTally] = field(default_factory=lambda: defaultdict(ConnectionTally))
    examples: list[str] = field(default_factory=list)
    changed_message_ids: list[int] = field(default_factory=list)

    @property
    def receipts_changed(self) -> int:
        return sum(t.receipts_changed for t in self.connections.values())


@dataclass(frozen=True)
class Reading:
    """A stored receipt as the current adapter and catalog read it."""

    restatement: ReceiptRestatement
    provider_timestamp: datetime | None
    received_at: datetime


def receipts_renormalize(
    *,
    apply: bool = False,
    batch: int = DEFAULT_BATCH,
    since: datetime | None = None,
    connection_slug: str = "",
    examples: int = EXAMPLES,
) -> RenormalizeReport:
    """Re-read stored receipts (received since `since`, of one connection if given); restate the
    changed ones and their messages when `apply`, else only report what would change."""
    report = RenormalizeReport(applied=apply)
    providers = dict(Connection.objects.values_list("pk", "provider"))
    slugs = dict(Connection.objects.values_list("pk", "slug"))
    counted: set[int] = set()
    for receipts in _batches(batch=batch, since=since, connection_slug=connection_slug):
        changed: list[ReceiptRestatement] = []
        for receipt in receipts:
            tally = report.connections[slugs[receipt.connection_id]]
            tally.examined += 1
            reading = read_again(receipt, providers[receipt.connection_id])
            if reading is None:
                tally.unreadable += 1
                continue
            differences = _differences(receipt, reading.restatement)
            if not differences and not _other_columns_differ(receipt, reading.restatement):
                continue
            changed.append(reading.restatement)
            tally.receipts_changed += 1
            tally.changes.update(differences)
            tally.networks_changed += receipt.network != reading.restatement.network
            tally.prices_changed += (receipt.price, receipt.currency) != (
                reading.restatement.price,
                reading.restatement.currency,
            )
            if len(report.examples) < examples and differences:
                report.examples.append(_example(receipt, slugs[receipt.connection_id], differences))
        changed_ids = {c.receipt_id for c in changed}
        message_ids = sorted({r.message_id for r in receipts if r.message_id and r.pk in changed_ids})
        with transaction.atomic():
            if apply:
                store.receipts_restate(changed)
            restated = _restate_messages(message_ids, providers, apply=apply)
        for message_id, connection_id in restated:
            # A dry run finds a message again in each batch holding one of its receipts.
            if message_id not in counted:
                counted.add(message_id)
                report.connections[slugs[connection_id]].messages_changed += 1
                report.changed_message_ids.append(message_id)
    return report


def _batches(*, batch: int, since: datetime | None, connection_slug: str) -> Iterator[list[Receipt]]:
    """The selected receipts, `batch` at a time, in id order (keyset: no OFFSET to rescan)."""
    selected = Receipt.objects.order_by("pk").only(
        "pk", "connection_id", "message_id", "provider_message_id", "dedupe_key", "provider_status", "status",
        "error_code", "error_description", "reason", "error_class", "catalog_class", "class_source",
        "provider_timestamp", "received_at", "raw_body", "headers", "network", "price", "currency",
    )  # fmt: skip
    if since is not None:
        selected = selected.filter(received_at__gte=since)
    if connection_slug:
        selected = selected.filter(connection__slug=connection_slug)
    last = 0
    while True:
        receipts = list(selected.filter(pk__gt=last)[:batch])
        if not receipts:
            return
        yield receipts
        last = receipts[-1].pk


def read_again(receipt: Receipt, provider: str) -> Reading | None:
    """The receipt as its adapter and the catalog read it now; None when its raw body no longer
    parses to exactly one receipt for the same message (left as it was)."""
    adapter = ADAPTERS.get(provider)
    if adapter is None:
        return None
    try:
        events = adapter.parse_events(stored_request(provider, receipt.raw_body, receipt.headers or {}))
    except (WebhookError, ControlMessage):
        return None
    event = _the_event(events, receipt)
    if event is None:
        return None
    change = status_change_for(provider, event, timezone.now())
    restatement = ReceiptRestatement(
        receipt_id=receipt.pk,
        status=event.status.value,
        error_code=event.error_code,
        error_description=event.error_description,
        reason=change.reason,
        error_class=change.error_class,
        catalog_class=change.catalog_class,
        class_source=change.class_source,
        network=event.network,
        price=event.price,
        currency=event.currency,
    )
    return Reading(restatement, receipt.provider_timestamp, receipt.received_at)


def stored_request(provider: str, raw_body: str, headers: Mapping[str, Any]) -> WebhookRequest:
    """A request carrying what a receipt kept of the one it came in.

    A receipt keeps the body, or the query of a request without one (a GET: no content type
    kept), or, for a receipt that shared its request, its own part of the body (an Infobip
    report, a Standard Webhooks item), which is put back in the envelope its adapter reads.
    Kannel's adapter reads the query alone, whichever method Kannel used.
    """
    kept = {str(name): str(value) for name, value in headers.items()}
    if provider == "kannel" or "content-type" not in kept:
        return WebhookRequest(method="GET", url=f"{STORED_URL}?{raw_body}", headers=kept, body=b"")
    return WebhookRequest(method="POST", url=STORED_URL, headers=kept, body=_enveloped(provider, raw_body).encode())


def _enveloped(provider: str, raw_body: str) -> str:
    envelope = {"infobip": "results", "standard-webhooks": "data"}.get(provider)
    if envelope is None:
        return raw_body
    try:
        part = json.loads(raw_body)
    except ValueError:
        return raw_body  # the adapter refuses it: unreadable
    if isinstance(part, dict) and envelope in part:
        return raw_body
    return json.dumps({envelope: [part] if provider == "infobip" else part})


def _the_event(events: list[ReceiptEvent], receipt: Receipt) -> ReceiptEvent | None:
    """The event that is this receipt: the one with its dedupe key, else the only one for its
    message (an item re-read alone loses its index in the request, so its key may differ)."""
    for event in events:
        if event.dedupe_key() == receipt.dedupe_key:
            return event
    same_message = [e for e in events if e.provider_message_id == receipt.provider_message_id]
    return same_message[0] if len(same_message) == 1 else None


def _differences(receipt: Receipt, restated: ReceiptRestatement) -> list[tuple[str, str, str]]:
    return [
        (name, getattr(receipt, name), getattr(restated, name))
        for name in COMPARED
        if getattr(receipt, name) != getattr(restated, name)
    ]


def _other_columns_differ(receipt: Receipt, restated: ReceiptRestatement) -> bool:
    return any(
        getattr(receipt, name) != getattr(restated, name)
        for name in store.RESTATED_RECEIPT_FIELDS
        if name not in COMPARED
    )


def _example(receipt: Receipt, slug: str, differences: list[tuple[str, str, str]]) -> str:
    changes = ", ".join(f"{name} {old or '-'} -> {new or '-'}" for name, old, new in differences)
    return f"receipt {receipt.pk} ({slug}, {receipt.provider_status}): {changes}"


def _restate_messages(message_ids: list[int], providers: Mapping[int, str], *, apply: bool) -> list[tuple[int, int]]:
    """Decide the messages' state again from all their receipts, re-read; write it when `apply`.
    The (message id, connection id) of those whose state changes."""
    if not message_ids:
        return []
    if apply:
        store.messages_lock(message_ids)
    readings: dict[int, list[Reading]] = defaultdict(list)
    for receipt in Receipt.objects.filter(message_id__in=message_ids).order_by("pk"):
        reading = read_again(receipt, providers[receipt.connection_id]) or _as_stored(receipt)
        readings[receipt.message_id].append(reading)  # type: ignore[index]
    now = timezone.now()
    restated: list[MessageRestatement] = []
    changed: list[tuple[int, int]] = []
    for message in Message.objects.filter(pk__in=message_ids).order_by("pk"):
        restatement = message_state(message, readings[message.pk], now=now)
        if restatement is not None:
            restated.append(restatement)
            changed.append((message.pk, message.connection_id))
    if apply:
        store.messages_restate(restated)
    return changed


def _as_stored(receipt: Receipt) -> Reading:
    """An unreadable receipt counts as it was stored."""
    return Reading(
        ReceiptRestatement(
            receipt_id=receipt.pk,
            status=receipt.status,
            error_code=receipt.error_code,
            error_description=receipt.error_description,
            reason=receipt.reason,
            error_class=receipt.error_class,
            catalog_class=receipt.catalog_class,
            class_source=receipt.class_source,
            network=receipt.network,
            price=receipt.price,
            currency=receipt.currency,
        ),
        receipt.provider_timestamp,
        receipt.received_at,
    )


def message_state(message: Message, readings: list[Reading], *, now: datetime) -> MessageRestatement | None:
    """The message's state as ingestion would have left it after these receipts (in arrival
    order, each moving it only to a status of higher rank), or None when that is its state."""
    if not readings:
        return None
    # Ingestion applies a receipt only above the current rank: the highest wins, the first of equals.
    winner = min(readings, key=lambda r: (-RANK[r.restatement.status], r.restatement.receipt_id))
    won = winner.restatement
    final_at = message.final_at
    if not is_final(won.status):
        final_at = None
    elif final_at is None or not is_final(message.status):
        final_at = final_time(winner.provider_timestamp, received_at=winner.received_at)
    # As ingestion notes them: each receipt naming a network or a price replaces the message's,
    # in arrival order; a message no receipt prices keeps its price-list cost.
    named = [r.restatement for r in readings if r.restatement.network]
    priced = [r.restatement for r in readings if r.restatement.price is not None]
    network = max(named, key=lambda r: r.receipt_id).network if named else message.network
    last_priced = max(priced, key=lambda r: r.receipt_id) if priced else None
    cost, currency = (last_priced.price, last_priced.currency) if last_priced else (message.cost, message.currency)
    restated = MessageRestatement(
        message_id=message.pk,
        status=won.status,
        error_code=won.error_code if won.error_class else "",
        reason=won.reason,
        error_class=won.error_class,
        catalog_class=won.catalog_class,
        class_source=won.class_source,
        final_at=final_at,
        status_changed_at=now if won.status != message.status else message.status_changed_at,
        network=network,
        cost=cost,
        currency=currency,
    )
    if all(getattr(message, name) == getattr(restated, name) for name in store.RESTATED_MESSAGE_FIELDS):
        return None
    return restated
