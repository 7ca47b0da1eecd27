"""The receipt SLA: how long a message may stay pending before its missing receipt is itself
news ("no receipt"). The sweep (receipts/sweeps.py) records it for the rules; pages and the
search filter compute it from the same settings, so no stored status is needed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from receipts.statuses import NO_RECEIPT, Status

if TYPE_CHECKING:  # the models import this module's layer, not the reverse
    from receipts.models import Message

PENDING_STATUSES = (Status.QUEUED, Status.ACCEPTED, Status.SENT)
NO_RECEIPT_LABEL = _("No receipt")


def receipt_sla_seconds(flow: str) -> int:
    """The flow's own SLA (DLR_FLOW_RECEIPT_SLA_SECONDS), else DLR_RECEIPT_SLA_SECONDS."""
    flow_slas: dict[str, int] = settings.DLR_FLOW_RECEIPT_SLA_SECONDS
    return int(flow_slas.get(flow, settings.DLR_RECEIPT_SLA_SECONDS))


def past_receipt_sla(*, status: str, flow: str, submitted_at: datetime, now: datetime) -> bool:
    return status in PENDING_STATUSES and submitted_at < now - timedelta(seconds=receipt_sla_seconds(flow))


def display_status(message: Message, now: datetime) -> str:
    """`no_receipt` for a message still pending past its SLA, else its stored status."""
    overdue = past_receipt_sla(status=message.status, flow=message.flow, submitted_at=message.submitted_at, now=now)
    return NO_RECEIPT if overdue else message.status


def no_receipt_condition(now: datetime) -> Q:
    """Messages pending past their SLA, in SQL: one range per flow with its own SLA, and the
    default for the others (the sweep's split, receipts/sweeps.py)."""
    flow_slas: dict[str, int] = settings.DLR_FLOW_RECEIPT_SLA_SECONDS
    default_cutoff = now - timedelta(seconds=settings.DLR_RECEIPT_SLA_SECONDS)
    overdue = Q(submitted_at__lt=default_cutoff) & ~Q(flow__in=list(flow_slas))
    for flow, sla in flow_slas.items():
        overdue |= Q(flow=flow, submitted_at__lt=now - timedelta(seconds=sla))
    return Q(status__in=PENDING_STATUSES) & overdue
