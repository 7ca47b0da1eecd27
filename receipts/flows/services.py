"""Writes on flows that span rows: a flow's KPIs set from the console's one form."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from receipts.flows.models import Flow, FlowKpi


@transaction.atomic
def flow_kpis_set(*, flow: Flow, kpis: dict[str, tuple[Decimal, int] | None]) -> None:
    """Each metric's threshold and window; None removes that KPI (its alert rule stays, unlinked)."""
    for metric, wanted in kpis.items():
        kpi = flow.kpis.filter(metric=metric).first()
        if wanted is None:
            if kpi is not None:
                kpi.delete()
            continue
        kpi = kpi or FlowKpi(flow=flow, metric=metric)
        kpi.threshold, kpi.window_minutes = wanted
        kpi.full_clean()
        kpi.save()
