"""The receipt SLA: how long a message may stay pending before its missing receipt is itself
news ("no receipt"). The sweep (receipts/sweeps.py) records it for the rules; pages and the
search filter compute it from the same function, so no stored status is needed.

Where the wait comes from, first that applies: the flow's own SLA when the flow is described
(receipts/flows), shortened for an adaptive flow to its route's recent 99th percentile time to
delivery (never below the flow's floor nor above its SLA); else the environment's
DLR_FLOW_RECEIPT_SLA_SECONDS for that flow; else DLR_RECEIPT_SLA_SECONDS."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from receipts.flows.selectors import FlowSla, flow_slas, route_p99, route_timings
from receipts.statuses import NO_RECEIPT, Status

if TYPE_CHECKING:  # the models import this module's layer, not the reverse
    from receipts.models import Message

PENDING_STATUSES = (Status.QUEUED, Status.ACCEPTED, Status.SENT)
NO_RECEIPT_LABEL = _("No receipt")


def adaptive_seconds(p99: float, *, floor: int, ceiling: int) -> int:
    """A route's learned wait: its p99 rounded up, bounded by the flow's floor and its SLA."""
    return min(ceiling, max(floor, math.ceil(p99)))


def _setting_sla(flow: str) -> int:
    flow_settings: dict[str, int] = settings.DLR_FLOW_RECEIPT_SLA_SECONDS
    return int(flow_settings.get(flow, settings.DLR_RECEIPT_SLA_SECONDS))


def _route_sla(sla: FlowSla, connection_id: int | None, country: str) -> int:
    if sla.adaptive and connection_id is not None:
        p99 = route_p99(connection_id, country)
        if p99 is not None:
            return adaptive_seconds(p99, floor=sla.floor, ceiling=sla.seconds)
    return sla.seconds


def receipt_sla_seconds(flow: str, *, connection_id: int | None = None, country: str = "") -> int:
    """Seconds a message of `flow` on that route may wait for a final receipt (see above)."""
    sla = flow_slas().get(flow) if flow else None
    return _setting_sla(flow) if sla is None else _route_sla(sla, connection_id, country)


def message_sla_seconds(message: Message) -> int:
    return receipt_sla_seconds(message.flow, connection_id=message.connection_id, country=message.country)


def past_receipt_sla(
    *,
    status: str,
    flow: str,
    submitted_at: datetime,
    now: datetime,
    connection_id: int | None = None,
    country: str = "",
) -> bool:
    wait = receipt_sla_seconds(flow, connection_id=connection_id, country=country)
    return status in PENDING_STATUSES and submitted_at < now - timedelta(seconds=wait)


def display_status(message: Message, now: datetime) -> str:
    """`no_receipt` for a message still pending past its SLA, else its stored status."""
    overdue = past_receipt_sla(
        status=message.status, flow=message.flow, submitted_at=message.submitted_at, now=now,
        connection_id=message.connection_id, country=message.country,
    )  # fmt: skip
    return NO_RECEIPT if overdue else message.status


def overdue_groups(now: datetime) -> list[Q]:
    """Messages past their SLA, as disjoint groups that each have one cut-off: a group per
    flow with its own SLA, a group per learned wait of an adaptive flow's routes (and one for
    the flow's other routes), and the default for every other flow. Each is a range on
    submitted_at the status index serves; the sweep takes them one by one."""
    described = flow_slas()
    flow_settings: dict[str, int] = settings.DLR_FLOW_RECEIPT_SLA_SECONDS
    own = {**flow_settings, **{flow: sla.seconds for flow, sla in described.items()}}

    def before(seconds: int) -> Q:
        return Q(submitted_at__lt=now - timedelta(seconds=seconds))

    groups = [before(settings.DLR_RECEIPT_SLA_SECONDS) & ~Q(flow__in=list(own))]
    timings = route_timings() if any(sla.adaptive for sla in described.values()) else {}
    for flow, seconds in own.items():
        sla = described.get(flow)
        if sla is None or not sla.adaptive or not timings:
            groups.append(Q(flow=flow) & before(seconds))
            continue
        # Routes that wait the same are one group: at most one per distinct wait between the
        # floor and the SLA, however many routes were learned.
        by_wait: dict[int, Q] = {}
        learned = Q()
        for (connection_id, country), p99 in timings.items():
            wait = adaptive_seconds(p99, floor=sla.floor, ceiling=seconds)
            if wait != seconds:
                route = Q(connection_id=connection_id, country=country)
                by_wait[wait] = by_wait.get(wait, Q()) | route
                learned |= route
        groups.extend(Q(flow=flow) & routes & before(wait) for wait, routes in by_wait.items())
        groups.append(Q(flow=flow) & ~learned & before(seconds) if by_wait else Q(flow=flow) & before(seconds))
    return groups


def no_receipt_condition(now: datetime) -> Q:
    """Messages pending past their SLA, in SQL (the search filter's "no receipt")."""
    overdue = Q()
    for group in overdue_groups(now):
        overdue |= group
    return Q(status__in=PENDING_STATUSES) & overdue
