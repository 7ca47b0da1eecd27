"""The forms of the flow pages: the flow itself, its KPIs, the fallback test, the go/no-go."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from alerts.models import AlertChannel
from receipts.flows.models import KPI_RANGES, Flow, KpiMetric, Launch
from receipts.models import Connection
from retries.flow_fallback import FAILURE, TRIGGERS
from retries.policy_vocabulary import normalize_country


def _active_users() -> Any:
    return get_user_model().objects.filter(is_active=True).order_by("username")


class FlowForm(forms.ModelForm[Flow]):
    countries = forms.CharField(
        max_length=400, help_text=_("ISO codes separated by commas, e.g. FR, BE."), widget=forms.TextInput()
    )
    connections = forms.ModelMultipleChoiceField(
        queryset=Connection.objects.order_by("slug"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("The routes the flow is sent through: readiness checks a policy covers each."),
    )  # fmt: skip

    class Meta:
        model = Flow
        fields = [
            "name", "slug", "channel", "countries", "connections", "monthly_volume", "sla_rate", "sla_seconds",
            "adaptive_sla", "adaptive_floor_seconds", "priority", "technical_owner", "business_owner",
        ]  # fmt: skip
        labels = {
            "slug": _("Flow name in messages"),
            "monthly_volume": _("Expected monthly volume"),
            # xgettext:no-python-format
            "sla_rate": _("SLA: % delivered"),
            "sla_seconds": _("SLA: within (seconds)"),
            "adaptive_sla": _("Adaptive receipt SLA per route"),
            "adaptive_floor_seconds": _("Adaptive SLA floor (seconds)"),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("technical_owner", "business_owner"):
            self.fields[name].queryset = _active_users()  # type: ignore[attr-defined]
        if self.instance.pk and not self.is_bound:
            self.initial["countries"] = ", ".join(self.instance.countries)

    def clean_countries(self) -> list[str]:
        codes, errors = [], []
        for part in filter(None, (p.strip() for p in self.cleaned_data["countries"].replace(";", ",").split(","))):
            try:
                codes.append(normalize_country(part))
            except ValueError as exc:
                errors.append(str(exc))
        if errors:
            raise ValidationError(errors)
        if not codes:
            raise ValidationError(_("Name at least one country."))
        return sorted(set(codes))


class KpiForm(forms.Form):
    """One optional threshold per KPI metric: empty means the flow has no such KPI."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for metric in KpiMetric:
            low, high = KPI_RANGES[metric]
            self.fields[f"{metric.value}_threshold"] = forms.DecimalField(
                label=str(metric.label), required=False, min_value=low, max_value=high, decimal_places=2,
                help_text=_("Empty: not a KPI of this flow."),
            )  # fmt: skip
            self.fields[f"{metric.value}_window"] = forms.TypedChoiceField(
                label=_("measured over"), coerce=int, initial=15,
                choices=[
                    (5, _("5 minutes")), (15, _("15 minutes")), (60, _("1 hour")), (360, _("6 hours")),
                    (1440, _("24 hours")),
                ],
            )  # fmt: skip

    def kpis(self) -> dict[str, tuple[Decimal, int] | None]:
        return {
            metric.value: None
            if self.cleaned_data[f"{metric.value}_threshold"] is None
            else (self.cleaned_data[f"{metric.value}_threshold"], self.cleaned_data[f"{metric.value}_window"])
            for metric in KpiMetric
        }


class KpiRulesForm(forms.Form):
    channels = forms.ModelMultipleChoiceField(
        queryset=AlertChannel.objects.filter(enabled=True), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("Who the KPIs' alerts notify (added to the rules' channels)."),
    )  # fmt: skip


ROUTE = _("%(country)s through %(connection)s")


class FallbackTestForm(forms.Form):
    route = forms.ChoiceField(label=_("Route to test"))
    trigger = forms.ChoiceField(
        choices=list(TRIGGERS.items()), initial=FAILURE, label=_("Each SMS of the test meets"),
        help_text=_("What the escalation is played against."),
    )  # fmt: skip
    fallback_email = forms.EmailField(
        required=False, max_length=254, help_text=_("Where an e-mail fallback should arrive (a test mailbox).")
    )

    def __init__(self, *args: Any, flow: Flow, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = {c.pk: c for c in flow.connections.all()}
        route = self.fields["route"]
        assert isinstance(route, forms.ChoiceField)
        route.choices = [
            (
                f"{country}:{connection.pk}",
                _("%(country)s through %(connection)s") % {"country": country, "connection": connection.slug},
            )
            for country in flow.countries
            for connection in self.connections.values()
        ]

    def chosen(self) -> tuple[str, Connection]:
        country, pk = self.cleaned_data["route"].split(":")
        return country, self.connections[int(pk)]


class LaunchDecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[(Launch.GO, _("Go")), (Launch.NO_GO, _("No-go"))], widget=forms.RadioSelect, label=_("Decision")
    )
    rationale = forms.CharField(
        max_length=4000, widget=forms.Textarea(attrs={"rows": 3}), help_text=_("Why: kept with the decision.")
    )
