"""Flow set-up and launch, for admins: describe a flow, its KPIs (and their alert rules in one
action), test its fallback, read its readiness, decide go or no-go, print the checklist."""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from alerts.flow_kpis import flow_kpi_rules_sync
from alerts.flow_launch import flow_launch_decide
from alerts.flow_readiness import flow_readiness
from dlrconsole import roles
from dlrconsole.audit.models import AuditEntry
from dlrconsole.audit.services import audit_action
from dlrconsole.console.common import HtmxHttpRequest, console_view
from dlrconsole.console.flow_forms import FallbackTestForm, FlowForm, KpiForm, KpiRulesForm, LaunchDecisionForm
from receipts.flows.models import Flow
from receipts.flows.selectors import flow_list
from receipts.flows.services import flow_kpis_set
from retries.flow_fallback import FallbackTestRefused, flow_fallback_test_run
from retries.pilots import flow_latest_pilot, pilot_comparison


def _flow(slug: str) -> Flow:
    return get_object_or_404(flow_list(), slug=slug)


def _to_flow(flow: Flow) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("console:flow", args=[flow.slug]))


@require_http_methods(["GET"])
@console_view(roles.MANAGE_FLOWS)
def flow_index(request: HtmxHttpRequest) -> HttpResponse:
    rows = [(flow, flow_readiness(flow)) for flow in flow_list()]
    return render(request, "console/flow_list.html", {"nav": "launch", "rows": rows})


@require_http_methods(["GET", "POST"])
@console_view(roles.MANAGE_FLOWS)
def flow_edit(request: HtmxHttpRequest, slug: str | None = None) -> HttpResponse:
    flow = _flow(slug) if slug else None
    form = FlowForm(request.POST or None, instance=flow)
    if request.method == "POST" and form.is_valid():
        saved = form.save()
        flash.success(request, f"Flow “{saved.name}” saved.")
        return _to_flow(saved)
    context = {"nav": "launch", "form": form, "flow": flow}
    return render(request, "console/flow_form.html", context, status=400 if form.errors else 200)


def _kpi_initial(flow: Flow) -> dict[str, Any]:
    initial: dict[str, Any] = {}
    for kpi in flow.kpis.all():
        initial[f"{kpi.metric}_threshold"] = kpi.threshold
        initial[f"{kpi.metric}_window"] = kpi.window_minutes
    return initial


def _latest_pilot(flow: Flow) -> dict[str, Any]:
    """The flow's newest pilot and, per country, the routes it recommends with the figures."""
    pilot = flow_latest_pilot(flow)
    return {"pilot": pilot, "pilot_comparison": pilot_comparison(pilot) if pilot else []}


def _detail(request: HtmxHttpRequest, flow: Flow, status: int = 200, **forms: Any) -> HttpResponse:
    context = {
        "nav": "launch",
        "flow": flow,
        "readiness": flow_readiness(flow),
        "kpi_form": forms.get("kpi_form") or KpiForm(initial=_kpi_initial(flow)),
        "kpi_rules_form": KpiRulesForm(),
        "test_form": forms.get("test_form") or FallbackTestForm(flow=flow),
        "decision_form": forms.get("decision_form") or LaunchDecisionForm(),
        "tests": flow.fallback_tests.select_related("connection", "run_by")[:10],
        **_latest_pilot(flow),
        "decisions": flow.decisions.select_related("decided_by"),
    }
    return render(request, "console/flow.html", context, status=status)


@require_http_methods(["GET"])
@console_view(roles.MANAGE_FLOWS)
def flow_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    return _detail(request, _flow(slug))


@require_POST
@console_view(roles.MANAGE_FLOWS)
def flow_kpis(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    flow = _flow(slug)
    form = KpiForm(request.POST)
    if not form.is_valid():
        return _detail(request, flow, status=400, kpi_form=form)
    flow_kpis_set(flow=flow, kpis=form.kpis())
    flash.success(request, "KPIs saved.")
    return _to_flow(flow)


@require_POST
@console_view(roles.MANAGE_FLOWS)
def flow_kpi_rules(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    flow = _flow(slug)
    form = KpiRulesForm(request.POST)
    if not form.is_valid():
        return _detail(request, flow, status=400)
    rules = flow_kpi_rules_sync(flow=flow, user=request.user, channels=form.cleaned_data["channels"])
    flash.success(request, f"{len(rules)} alert rule(s) match the KPIs now.")
    return _to_flow(flow)


@require_POST
@console_view(roles.MANAGE_FLOWS)
def flow_fallback_test(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    flow = _flow(slug)
    form = FallbackTestForm(request.POST, flow=flow)
    if not form.is_valid():
        return _detail(request, flow, status=400, test_form=form)
    country, connection = form.chosen()
    try:
        test = flow_fallback_test_run(
            flow=flow, country=country, connection=connection, user=request.user,
            fallback_email=form.cleaned_data["fallback_email"], trigger=form.cleaned_data["trigger"],
        )  # fmt: skip
    except FallbackTestRefused as exc:
        form.add_error("route", str(exc))
        return _detail(request, flow, status=400, test_form=form)
    change = {"field": "fallback_test", "label": "Fallback test", "old": "", "new": f"{test.outcome}: {test.summary}"}
    audit_action(user=request.user, instance=flow, changes=[change])
    (flash.success if test.outcome == test.Outcome.PASSED else flash.error)(request, test.summary)
    return _to_flow(flow)


@require_POST
@console_view(roles.MANAGE_FLOWS)
def flow_decide(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    flow = _flow(slug)
    form = LaunchDecisionForm(request.POST)
    if not form.is_valid():
        return _detail(request, flow, status=400, decision_form=form)
    try:
        decision = flow_launch_decide(
            flow=flow, decision=form.cleaned_data["decision"], rationale=form.cleaned_data["rationale"],
            user=request.user,
        )  # fmt: skip
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _detail(request, flow, status=400, decision_form=form)
    change = {"field": "decision", "label": "Go/no-go", "old": "", "new": decision.get_decision_display()}
    audit_action(user=request.user, instance=decision, changes=[change], action=AuditEntry.Action.CREATED)
    flash.success(request, f"Decision recorded: {decision.get_decision_display()}.")
    return _to_flow(flow)


@require_http_methods(["GET"])
@console_view(roles.MANAGE_FLOWS)
def flow_checklist(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    flow = _flow(slug)
    context = {
        "flow": flow,
        "readiness": flow_readiness(flow),
        "kpis": flow.kpis.all(),
        "last_test": flow.fallback_tests.select_related("connection").first(),
        "decisions": flow.decisions.select_related("decided_by")[:5],
    }
    return render(request, "console/flow_checklist.html", context)
