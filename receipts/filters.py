"""One FilterSet per listable model, shared by the API and the console pages."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import F, Q
from django.http import QueryDict

from receipts.models import ClassSource, Connection, ErrorClass, Message
from receipts.phones import InvalidNumber, parse_number
from receipts.reasons import reason_choices
from receipts.search import SearchTerm, search_interpret
from receipts.statuses import Status

# Callers who may not see full numbers may not search by one either: each answer would say
# whether a guessed number was sent to, and 10^5 guesses unmask the 5 hidden digits.
NUMBER_SEARCH_REFUSED = (
    "Searching by phone number needs the permission to see full numbers; "
    "search by provider message id or client reference instead."
)


class MessageFilterForm(forms.Form):
    # Set by MessageFilter from its caller's permission; refused unless said otherwise.
    see_numbers = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The number is normalized here, not in its filter, because a national spelling
        # ("06 12 34 56 78") needs the `region` hint from another field.
        raw = cleaned.get("recipient")
        if raw and not self.see_numbers:
            self.add_error("recipient", NUMBER_SEARCH_REFUSED)
        elif raw:
            try:
                cleaned["recipient"] = parse_number(raw, region=cleaned.get("region") or "").e164
            except InvalidNumber as exc:
                self.add_error("recipient", str(exc))
        # The search box reads a national number with the country hint, or else with the
        # country filter: someone looking at French messages types French numbers.
        if cleaned.get("q"):
            hint = cleaned.get("region") or cleaned.get("country") or ""
            term = search_interpret(cleaned["q"], region=hint)
            if term.number and not self.see_numbers:
                self.add_error("q", NUMBER_SEARCH_REFUSED)
            else:
                cleaned["q"] = term
        return cleaned


class MessageFilter(django_filters.FilterSet):
    # The multiple-choice filters below say distinct=False: django-filter's default DISTINCT
    # guards against joins that repeat rows, which these single-table filters never make, and
    # it would make PostgreSQL sort every match instead of reading the first page off an index.
    q = django_filters.CharFilter(
        method="filter_q",
        max_length=128,
        help_text="Phone number in any common format, provider message id or client reference (exact).",
    )
    recipient = django_filters.CharFilter(field_name="recipient", help_text="Phone number in any common format.")
    region = django_filters.CharFilter(
        method="filter_nothing", max_length=2, help_text="Country hint (ISO alpha-2) for a national-format number."
    )
    provider_message_id = django_filters.CharFilter()
    client_reference = django_filters.CharFilter()
    status = django_filters.MultipleChoiceFilter(distinct=False, choices=Status.choices)
    error_class = django_filters.MultipleChoiceFilter(
        distinct=False, choices=ErrorClass.choices, help_text="Effective class."
    )
    catalog_class = django_filters.MultipleChoiceFilter(
        distinct=False,
        choices=ErrorClass.choices,
        help_text="The class the error catalog gives, whatever the provider said.",
    )
    class_source = django_filters.ChoiceFilter(choices=ClassSource.choices)
    provider_disagrees = django_filters.BooleanFilter(
        method="filter_provider_disagrees",
        help_text="The provider's own permanence flag contradicted the error catalog (Infobip).",
    )
    reason = django_filters.MultipleChoiceFilter(distinct=False, choices=reason_choices)
    flow = django_filters.CharFilter()
    connection = django_filters.ModelChoiceFilter(
        queryset=Connection.objects.all(), to_field_name="slug", help_text="Connection slug."
    )
    country = django_filters.CharFilter(method="filter_country", max_length=2)
    submitted_after = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="gte")
    submitted_before = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="lt")

    class Meta:
        model = Message
        form = MessageFilterForm
        fields: list[str] = []

    def __init__(self, data: QueryDict | None = None, *args: Any, see_numbers: bool = False, **kwargs: Any) -> None:
        """`see_numbers`: whether the caller may see full numbers, and so search by them."""
        self.see_numbers = see_numbers
        if data is not None:
            # A form's "any" option submits `reason=` (browsers send every select): an empty
            # choice means no filter, not an invalid one.
            data = data.copy()
            for name, field in self.base_filters.items():
                if isinstance(field, django_filters.MultipleChoiceFilter) and name in data:
                    values = [value for value in data.getlist(name) if value]
                    if values:
                        data.setlist(name, values)
                    else:
                        del data[name]
        super().__init__(data, *args, **kwargs)

    @property
    def form(self) -> MessageFilterForm:
        form: MessageFilterForm = super().form
        form.see_numbers = self.see_numbers
        return form

    def filter_nothing(self, queryset: Any, name: str, value: Any) -> Any:
        return queryset

    def filter_q(self, queryset: Any, name: str, value: SearchTerm) -> Any:
        return queryset.filter(value.condition())

    def filter_provider_disagrees(self, queryset: Any, name: str, value: bool | None) -> Any:
        if value is None:
            return queryset
        disagreeing = Q(class_source=ClassSource.PROVIDER) & ~Q(error_class=F("catalog_class"))
        return queryset.filter(disagreeing) if value else queryset.exclude(disagreeing)

    def filter_country(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(country=value.upper())
