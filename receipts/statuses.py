"""The normalized message status and the rule for moving between statuses.

Providers never guarantee the order of their receipts (Vonage, Sinch and Stripe say so; Sinch
may skip `Dispatched`), so the state machine is a precedence order, not a sequence: a receipt
moves a message only to a status of higher precedence. Whatever order receipts arrive in, the
message ends in the status of highest precedence among them, which is what makes ingestion
order-independent (see docs/STATUSES.md for the table and the reasoning).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    # Ours, before any receipt: the product registered the message.
    QUEUED = "queued", _("Queued")
    # The provider took the message.
    ACCEPTED = "accepted", _("Accepted")
    # Handed to the carrier or SMSC; a final receipt should follow.
    SENT = "sent", _("Sent")
    # The provider gave a status we cannot map, or says itself it does not know the outcome
    # (Vonage `unknown`, Sinch `Unknown`, Telnyx `delivery_unconfirmed`).
    UNKNOWN = "unknown", _("Unknown")
    # Final: the validity period ran out before the handset took the message.
    EXPIRED = "expired", _("Expired")
    # Final: the provider failed before or while handing the message to the carrier.
    FAILED = "failed", _("Failed")
    # Final: refused by the provider or operator before any delivery attempt.
    REJECTED = "rejected", _("Rejected")
    # Final: the carrier reported a negative delivery receipt.
    UNDELIVERED = "undelivered", _("Undelivered")
    # Final: the handset received the message.
    DELIVERED = "delivered", _("Delivered")


# Precedence, lowest first. A message moves only to a status ranked higher than its own.
# `unknown` sits above the in-flight statuses (it is the provider's last word so far) but
# below every definitive outcome, so a real outcome arriving later still wins. Among the
# definitive failures the more authoritative source wins: a carrier's negative receipt
# (undelivered) over an operator refusal (rejected) over a provider-side failure (failed)
# over an SMSC validity timeout (expired). `delivered` outranks everything: a handset
# acknowledgement after an `expired` is real (late DLRs after SMSC expiry happen) and is the
# one outcome the product must not retry after.
PRECEDENCE: tuple[Status, ...] = (
    Status.QUEUED,
    Status.ACCEPTED,
    Status.SENT,
    Status.UNKNOWN,
    Status.EXPIRED,
    Status.FAILED,
    Status.REJECTED,
    Status.UNDELIVERED,
    Status.DELIVERED,
)
RANK: dict[str, int] = {status.value: rank for rank, status in enumerate(PRECEDENCE)}

# Not a status a provider reports: a message still pending past its receipt SLA. The sweep
# records it as an outbox event (receipts/sweeps.py) and rules match it like a status.
NO_RECEIPT = "no_receipt"

FINAL_STATUSES: frozenset[str] = frozenset(
    {Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED, Status.REJECTED, Status.FAILED}
)
FAILURE_STATUSES: frozenset[str] = FINAL_STATUSES - {Status.DELIVERED}


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def can_advance(current: str, new: str) -> bool:
    """Whether a receipt with status `new` moves a message that is in `current`."""
    return RANK[new] > RANK[current]


def statuses_below(status: str) -> list[str]:
    """The statuses a message may be in for `status` to move it (used in conditional updates)."""
    return [s.value for s in PRECEDENCE[: RANK[status]]]


def resolve(statuses: list[str]) -> str:
    """The status a message ends in after receiving `statuses` in any order."""
    return max(statuses, key=RANK.__getitem__, default=Status.QUEUED.value)


class ReceiptOutcome(models.TextChoices):
    """What a stored receipt did to its message, shown on the timeline."""

    APPLIED = "applied", _("Moved the message to this status")
    SAME = "same", _("Repeated the message's current status")
    LATE = "late", _("Arrived after a later status; kept, not applied")
    CONFLICT = "conflict", _("A different final status after the message's final; kept, not applied")
    PARKED = "parked", _("Waiting for the message to be registered")


# The console's badge colour per status (choices with a label and a colour, as netbox keeps
# them): green is the one good outcome, red a definitive failure, amber a failure that time
# caused, blue still in flight, grey when nobody knows.
STATUS_COLOURS: dict[str, str] = {
    Status.QUEUED: "grey",
    Status.ACCEPTED: "blue",
    Status.SENT: "blue",
    Status.UNKNOWN: "grey",
    Status.EXPIRED: "amber",
    Status.FAILED: "red",
    Status.REJECTED: "red",
    Status.UNDELIVERED: "red",
    Status.DELIVERED: "green",
}
