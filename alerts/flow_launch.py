"""Go/no-go: a decision on a flow's launch, by whom, when, why, with the readiness as it was at
that moment; the history is the flow's decisions, newest first. The latest is copied onto the
flow (Flow.launch, audited with the flow) so that registration can flag messages of a flow
without a "go" (receipts/services.py)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alerts.flow_readiness import flow_readiness
from receipts.flows.models import Flow, Launch, LaunchDecision

MAX_RATIONALE = 4000


@transaction.atomic
def flow_launch_decide(*, flow: Flow, decision: str, rationale: str, user: Any) -> LaunchDecision:
    """Record a go or a no-go. A go on a flow that is not ready is allowed (the meeting may
    accept a known gap) but must say why, like every decision: the rationale is required."""
    rationale = rationale.strip()
    if decision not in (Launch.GO, Launch.NO_GO):
        raise ValidationError({"decision": "Choose go or no-go."})
    if not rationale:
        raise ValidationError({"rationale": "Say why: the decision is kept with its reason."})
    if len(rationale) > MAX_RATIONALE:
        raise ValidationError({"rationale": f"At most {MAX_RATIONALE} characters."})
    # One decision at a time per flow: the latest one recorded is the one the flow carries.
    Flow.objects.select_for_update().filter(pk=flow.pk).get()
    readiness = flow_readiness(flow)
    recorded = LaunchDecision.objects.create(
        flow=flow, decision=decision, decided_at=timezone.now(), decided_by=user if getattr(user, "pk", None) else None,
        rationale=rationale, snapshot=readiness.snapshot(), ready=readiness.ready,
    )  # fmt: skip
    flow.launch = decision
    flow.save(update_fields=["launch"])
    return recorded
