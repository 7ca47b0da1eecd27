"""The admin's policy editor: the rules list (order, enable, warnings), the rule form with its
steps edited in place (htmx), the dry run, and "which rule applies?". Views stay thin: reads
and writes are retries' (policy_vocabulary, policy_warnings, policy_tester, policy_simulation,
policy_services)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from dlrconsole.console.common import HtmxHttpRequest, console_view
from dlrconsole.console.policy_forms import RuleForm, StepFormSet, rule_draft
from receipts.models import Connection, Message
from receipts.reasons import REASONS
from retries.models import Rule, Step
from retries.policy_services import rule_delete, rule_from_draft, rule_move, rule_save, rule_set_enabled
from retries.policy_simulation import draft_rule_set, dry_run
from retries.policy_tester import describe_conditions, describe_steps, probe_message, which_rule
from retries.policy_vocabulary import (
    Choice,
    country_choices_first,
    error_class_choices,
    flow_choices,
    format_duration,
    format_durations,
    known_flows,
    normalize_country,
    reason_choices,
    recent_countries,
    status_choices,
)
from retries.policy_warnings import rules_warnings
from retries.selectors import rule_deletion

EDIT_RULES = "retries.change_rule"
DELETE_RULES = "retries.delete_rule"
STEP_FIELDS = ("id", "action", "count", "delays", "target_connection", "fallback_channel")


def _rules() -> list[Rule]:
    steps = Prefetch("steps", queryset=Step.objects.select_related("fallback_channel", "target_connection"))
    return list(Rule.objects.prefetch_related("connections", steps).order_by("position", "id"))


def _slugs() -> dict[int, str]:
    return dict(Connection.objects.values_list("pk", "slug"))


@require_http_methods(["GET"])
@console_view(EDIT_RULES)
def rules_list(request: HtmxHttpRequest) -> HttpResponse:
    rules = _rules()
    warnings, slugs = rules_warnings(rules), _slugs()
    rows = [
        {"rule": r, "conditions": describe_conditions(r, slugs), "steps": describe_steps(r), "warnings": warnings[r.pk]}
        for r in rules
    ]
    return render(request, "console/policies/rules.html", {"nav": "policies", "rows": rows})


@require_POST
@console_view(EDIT_RULES)
def rule_move_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    offset = {"up": -1, "down": 1}.get(request.POST.get("direction", ""))
    if offset is None:
        return HttpResponseBadRequest(_("direction must be up or down"))
    rule_move(rule=get_object_or_404(Rule, pk=pk), offset=offset)
    return redirect("console:policies")


@require_POST
@console_view(EDIT_RULES)
def rule_enabled_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk)
    enabled = request.POST.get("enabled") == "1"
    rule_set_enabled(rule=rule, enabled=enabled)
    flash.success(
        request, (_("Rule “%(name)s” enabled.") if enabled else _("Rule “%(name)s” disabled.")) % {"name": rule.name}
    )
    return redirect("console:policies")


@require_http_methods(["GET", "POST"])
@console_view(DELETE_RULES)
def rule_delete_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A confirmation page that says what deleting changes; the POST deletes (audited through
    the rule's history, as every change of the editor)."""
    rule = get_object_or_404(Rule, pk=pk)
    if request.method == "POST":
        name = rule.name
        rule_delete(rule=rule)
        flash.success(request, _("Rule “%(name)s” deleted.") % {"name": name})
        return redirect("console:policies")
    context = {
        "nav": "policies", "rule": rule, "impact": rule_deletion(rule),
        "conditions": describe_conditions(rule, _slugs()), "steps": describe_steps(rule),
    }  # fmt: skip
    return render(request, "console/policies/rule_delete.html", context)


def _initial(rule: Rule | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if rule is None:
        return {"enabled": True}, []
    initial = {
        "name": rule.name, "enabled": rule.enabled, "flows": rule.flows, "statuses": rule.statuses,
        "error_classes": rule.error_classes, "reasons": rule.reasons, "countries": rule.countries,
        "connections": list(rule.connection_ids()),
        "deadline": format_duration(rule.deadline_seconds) if rule.deadline_seconds else "",
    }  # fmt: skip
    steps = [
        {
            "id": s.pk,
            "action": s.action,
            "count": s.count,
            "delays": format_durations(s.delays),
            "target_connection": s.target_connection_id,
            "fallback_channel": s.fallback_channel_id,
        }
        for s in rule.steps.all()
    ]
    return initial, steps


def _posted_steps(data: Any) -> list[dict[str, Any]]:
    """The steps as posted, as plain rows, to add, remove or move one before re-rendering."""
    try:
        total = min(int(data.get("steps-TOTAL_FORMS", 0)), 20)
    except ValueError:
        total = 0
    return [{name: data.get(f"steps-{i}-{name}", "") for name in STEP_FIELDS} for i in range(total)]


def _posted_conditions(data: Any) -> dict[str, Any]:
    names = ("flows", "connections", "countries", "statuses", "error_classes", "reasons")
    lists = {name: data.getlist(name) for name in names}
    texts = {name: data.get(name, "") for name in ("name", "deadline")}
    return lists | texts | {"enabled": bool(data.get("enabled"))}


def apply_step_op(rows: list[dict[str, Any]], op: str) -> list[dict[str, Any]]:
    """'add', 'remove-N', 'up-N', 'down-N' on the posted steps; anything else leaves them."""
    name, _, index_text = op.partition("-")
    if name == "add":
        return [*rows, {"action": "retry_same", "count": 1, "delays": ""}][:20]
    if not index_text.isdigit() or not 0 <= int(index_text) < len(rows):
        return rows
    index, rows = int(index_text), list(rows)
    if name == "remove":
        rows.pop(index)
    elif name in ("up", "down"):
        other = index - 1 if name == "up" else index + 1
        if 0 <= other < len(rows):
            rows[index], rows[other] = rows[other], rows[index]
    return rows


def _step_formset(rows: list[dict[str, Any]]) -> Any:
    return StepFormSet(prefix="steps", initial=rows)


def _vocabulary() -> dict[str, Any]:
    return {
        "flow_choices": flow_choices(), "status_choices": status_choices(),
        "class_choices": error_class_choices(), "reason_choices": reason_choices(),
        "connection_choices": [Choice(str(pk), slug) for pk, slug in sorted(_slugs().items(), key=lambda i: i[1])],
    }  # fmt: skip


def _form_page(
    request: HtmxHttpRequest, context: dict[str, Any], form: RuleForm, steps: Any, status: int = 200
) -> HttpResponse:
    names = ("flows", "connections", "countries", "statuses", "error_classes", "reasons")
    selected = {name: [str(value) for value in form[name].value() or []] for name in names}
    # The chosen countries, then those of recent traffic, then the rest by name.
    chosen = [code.strip().upper() for code in selected["countries"]]
    countries = country_choices_first([*chosen, *recent_countries()])
    context = context | {"form": form, "steps": steps, "selected": selected | {"countries": chosen}}
    context["country_choices"] = countries
    return render(request, "console/policies/rule_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@console_view(EDIT_RULES)
def rule_edit(request: HtmxHttpRequest, pk: int | None = None) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk) if pk else None
    context: dict[str, Any] = {"nav": "policies", "rule": rule, **_vocabulary()}
    if request.method == "GET":
        initial, rows = _initial(rule)
        form, steps = RuleForm(initial=initial), _step_formset(rows)
        if rule is not None:
            context["draft_warnings"] = rules_warnings(_rules()).get(rule.pk, [])
        return _form_page(request, context, form, steps)
    op = request.POST.get("op", "save")
    if op not in ("save", "dry-run"):
        # A step added, removed or moved without htmx: the whole form again as typed, nothing
        # stored and nothing judged yet (the form is not being saved).
        form = RuleForm(initial=_posted_conditions(request.POST))
        steps = _step_formset(apply_step_op(_posted_steps(request.POST), op))
        return _form_page(request, context, form, steps)
    form = RuleForm(request.POST)
    steps = StepFormSet(request.POST, prefix="steps")
    if not (form.is_valid() and steps.is_valid()):
        return _form_page(request, context, form, steps, status=400)
    draft = rule_draft(form, steps)
    if op == "dry-run":
        rules = draft_rule_set(rule_from_draft(draft, base=rule))
        context["dry_run"] = dry_run(rules, now=timezone.now())
        context["draft_warnings"] = rules_warnings(rules).get(rule.pk if rule else None, [])
        return _form_page(request, context, form, steps)
    try:
        saved = rule_save(draft=draft, rule=rule)
    except ValidationError as exc:
        form.add_error(None, exc)
        return _form_page(request, context, form, steps, status=400)
    flash.success(request, _("Rule “%(name)s” saved.") % {"name": saved.name})
    return redirect("console:policies")


@require_POST
@console_view(EDIT_RULES)
def rule_steps(request: HtmxHttpRequest) -> HttpResponse:
    """The steps fragment after adding, removing or moving a step (htmx); nothing is stored."""
    steps = _step_formset(apply_step_op(_posted_steps(request.POST), request.POST.get("op", "")))
    return render(request, "console/policies/rule_form.html#steps", {"steps": steps})


@require_http_methods(["GET"])
@console_view(EDIT_RULES)
def tester(request: HtmxHttpRequest) -> HttpResponse:
    """Which rule applies to a message (by id), or to one described by its fields."""
    data = request.GET
    context: dict[str, Any] = {
        "nav": "policies", "connections": Connection.objects.order_by("slug"), "q": data, **_vocabulary(),
    }  # fmt: skip
    message: Message | None = None
    if (message_id := data.get("message", "").strip()) and data.get("by") != "fields":
        if not message_id.isdigit():
            return render(
                request, "console/policies/tester.html", context | {"error": _("a message id is a number")}, status=400
            )
        message = Message.objects.select_related("connection").filter(pk=int(message_id)).first()
        if message is None:
            context["error"] = _("no message %(id)s") % {"id": message_id}
            return render(request, "console/policies/tester.html", context, status=404)
    elif data.get("by") == "fields":
        message, error = _described(data)
        if error:
            return render(request, "console/policies/tester.html", context | {"error": error}, status=400)
    if message is not None:
        applied = which_rule(message, seen=data.get("status") if data.get("by") == "fields" else None)
        context |= {"message": message, "applied": applied}
    return render(request, "console/policies/tester.html", context)


def _described(data: Any) -> tuple[Message | None, str]:
    flow, reason, status = data.get("flow", ""), data.get("reason", ""), data.get("status", "")
    if flow and flow not in known_flows():
        return None, f"unknown flow “{flow}”"
    if reason and reason not in REASONS:
        return None, f"unknown reason “{reason}”"
    if status not in {c.value for c in status_choices()}:
        return None, "choose the status (or no receipt) to test"
    try:
        country = normalize_country(data["country"]) if data.get("country", "").strip() else ""
    except ValueError as exc:
        return None, str(exc)
    connection = None
    if slug := data.get("connection", ""):
        connection = Connection.objects.filter(slug=slug).first()
        if connection is None:
            return None, f"unknown connection “{slug}”"
    return probe_message(flow=flow, country=country, connection=connection, status=status, reason=reason), ""
