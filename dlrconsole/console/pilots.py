"""Pilots, for admins: send a few test messages through several connections to some countries,
watch them come back, and read the routes side by side with a recommended primary and fallback
(retries/pilots.py). Creating and cancelling a pilot are in the audit log (its history)."""

from __future__ import annotations

from typing import Any

import phonenumbers
from django import forms
from django.contrib import messages as flash
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from dlrconsole import roles
from dlrconsole.console.common import HtmxHttpRequest, console_view, render_page
from receipts.countries import country_name
from receipts.flows.models import Flow
from receipts.models import Connection
from receipts.phones import mask_number
from retries.models import Pilot, PilotSend
from retries.pilots import DEFAULT_BODY, MAX_PER_ROUTE, PilotInvalid, pilot_cancel, pilot_comparison
from retries.pilots import pilot_create as create_pilot

MANAGE_PILOTS = "retries.add_pilot"
COUNTRY_CHOICES = sorted(
    ((code, f"{country_name(code)} ({code})") for code in phonenumbers.SUPPORTED_REGIONS if code != "001"),
    key=lambda c: c[1],
)


class PilotForm(forms.Form):
    name = forms.CharField(max_length=120)
    flow = forms.ModelChoiceField(
        queryset=Flow.objects.order_by("name"), required=False, to_field_name="slug", empty_label=_("No flow"),
        help_text=_("The flow the routes are piloted for: its countries and connections unless you choose fewer."),
    )  # fmt: skip
    countries = forms.MultipleChoiceField(
        choices=COUNTRY_CHOICES, required=False, widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=_("Empty: the flow's countries."),
    )  # fmt: skip
    connections = forms.ModelMultipleChoiceField(
        queryset=Connection.objects.filter(enabled=True, sender__enabled=True).defer("secrets"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Connections with a send API, in test mode (they send only to their test numbers) or simulated. "
            "None ticked: the flow's."
        ),
    )
    messages_per_route = forms.IntegerField(
        min_value=1,
        max_value=MAX_PER_ROUTE,
        initial=10,
        help_text=format_lazy(_("Test messages per connection and country, at most {}."), MAX_PER_ROUTE),
    )
    body = forms.CharField(max_length=160, initial=DEFAULT_BODY, label=_("Text"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Without a flow there is nothing to default to (with one, the service takes its own).
        if cleaned.get("flow") is None:
            for name in ("countries", "connections"):
                if name in cleaned and not cleaned[name]:
                    self.add_error(name, _("This field is required (or choose a flow)."))
        return cleaned


def _initial(flow: Flow | None) -> dict[str, Any]:
    """A pilot started from a flow's page: its countries and connections ticked."""
    if flow is None:
        return {}
    return {"flow": flow, "name": f"{flow.name}: routes", "countries": flow.countries,
            "connections": list(flow.connections.all())}  # fmt: skip


@require_http_methods(["GET", "POST"])
@console_view(MANAGE_PILOTS)
def pilots(request: HtmxHttpRequest) -> HttpResponse:
    chosen = Flow.objects.filter(slug=request.GET.get("flow", "")).first() if request.method == "GET" else None
    form = PilotForm(request.POST or None, initial=_initial(chosen))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            pilot = create_pilot(
                name=data["name"], flow=data["flow"], countries=data["countries"],
                connections=list(data["connections"]), messages_per_route=data["messages_per_route"],
                body=data["body"], user=request.user,
            )  # fmt: skip
        except PilotInvalid as exc:
            for name, why in exc.errors.items():
                form.add_error(name if name in form.fields else None, why)
        else:
            flash.success(request, _("Pilot “%(name)s” started.") % {"name": pilot.name})
            return HttpResponseRedirect(reverse("console:pilot", args=[pilot.pk]))
    listed = Pilot.objects.select_related("flow").prefetch_related("connections")[:50]
    context = {"nav": "pilots", "form": form, "pilots": listed}
    return render(request, "console/pilots.html", context, status=400 if form.errors else 200)


def _progress(pilot: Pilot) -> dict[str, int]:
    counts = {outcome: 0 for outcome in PilotSend.Outcome.values}
    for row in PilotSend.objects.filter(pilot=pilot).values("outcome").order_by():
        counts[row["outcome"]] += 1
    return counts


@require_http_methods(["GET"])
@console_view(MANAGE_PILOTS)
def pilot(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    found = get_object_or_404(Pilot.objects.select_related("flow").prefetch_related("connections"), pk=pk)
    numbers = (
        found.test_numbers if roles.can_see_numbers(request.user) else [mask_number(n) for n in found.test_numbers]
    )
    comparison = pilot_comparison(found)
    watching = found.state == Pilot.State.SENDING or any(r.pending for c in comparison for r in c.routes)
    context: dict[str, Any] = {
        "nav": "pilots", "pilot": found, "numbers": numbers, "progress": _progress(found),
        "comparison": comparison, "watching": watching,
    }  # fmt: skip
    return render_page(request, "console/pilot.html", "results", context)


@require_POST
@console_view(MANAGE_PILOTS)
def pilot_cancel_view(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    found = get_object_or_404(Pilot, pk=pk)
    dropped = pilot_cancel(found, user=request.user)
    flash.success(request, _("Pilot cancelled: %(count)s test messages not sent.") % {"count": dropped})
    return HttpResponseRedirect(reverse("console:pilot", args=[found.pk]))
