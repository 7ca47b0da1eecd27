"""One FilterSet per listable model, shared by the API and the console pages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db.models import F, Q
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from receipts.models import ClassSource, Connection, ErrorClass, Message
from receipts.phones import InvalidNumber, parse_number
from receipts.reasons import reason_choices
from receipts.search import SearchTerm, search_interpret
from receipts.sla import NO_RECEIPT_LABEL, no_receipt_condition
from receipts.statuses import FAILURE_STATUSES, FINAL_STATUSES, NO_RECEIPT, Status

# The stored statuses, and "no receipt": pending past the receipt SLA, computed (receipts/sla.py).
STATUS_FILTER_CHOICES = [*Status.choices, (NO_RECEIPT, NO_RECEIPT_LABEL)]

# PostgreSQL's timestamptz refuses offsets beyond ±15:59 ("time zone displacement out of
# range") where Python takes up to ±23:59; no zone on Earth is past +14:00.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)
# RFC 3339 with those offsets: what the API promises (it also reads a few other ISO 8601 spellings).
INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-](0\d|1[0-5]):[0-5]\d)$"
INSTANT_SCHEMA = {"type": "string", "format": "date-time", "pattern": INSTANT_PATTERN}


def check_offset(value: datetime) -> None:
    """ValueError, saying why, for an offset PostgreSQL refuses."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        raise ValueError(gettext("the time zone offset must be between -15:59 and +15:59"))


class InstantField(IsoDateTimeField):
    """An ISO 8601 date and time that PostgreSQL can compare. Kept with its offset: the
    database converts it, also where the instant in UTC is outside Python's years 1 to 9999."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is not None:
            try:
                check_offset(parsed)
            except ValueError as exc:
                raise ValidationError(str(exc), code="out_of_range") from None
        return parsed


@extend_schema_field(INSTANT_SCHEMA)
class InstantFilter(django_filters.IsoDateTimeFilter):
    field_class = InstantField


class StrictBooleanField(forms.Field):
    """`true` or `false`, nothing else: a typo must not silently mean "either"."""

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise ValidationError(_("must be true or false"), code="invalid")


@extend_schema_field({"type": "boolean"})
class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


# A column of two-letter codes can only match two letters; anything else is a mistake to report.
two_letters = RegexValidator(r"^[A-Za-z]{2}\Z", _("must be a two-letter ISO 3166 code, e.g. FR"))

# Callers who may not see full numbers may not search by one either: each answer would say
# whether a guessed number was sent to, and 10^5 guesses unmask the 5 hidden digits.
NUMBER_SEARCH_REFUSED = _(
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
            term = search_interpret(cleaned["q"], region=hint, default_region=settings.DLR_DEFAULT_REGION)
            if term.number and not self.see_numbers:
                self.add_error("q", NUMBER_SEARCH_REFUSED)
            else:
                cleaned["q"] = term
        return cleaned


STATUS_GROUPS = (("delivered", _("Delivered")), ("failed", _("Failed")), ("pending", _("Pending")))
STATUS_GROUP_MEMBERS: dict[str, list[str]] = {
    "delivered": [Status.DELIVERED.value],
    "failed": sorted(FAILURE_STATUSES),
    "pending": sorted(set(Status.values) - FINAL_STATUSES),
}
UNSET_FIELDS = (("country", _("No country")), ("network", _("No network")), ("flow", _("No flow")))


class MessageFilter(django_filters.FilterSet):
    # The multiple-choice filters below say distinct=False: django-filter's default DISTINCT
    # guards against joins that repeat rows, which these single-table filters never make, and
    # it would make PostgreSQL sort every match instead of reading the first page off an index.
    q = django_filters.CharFilter(
        method="filter_q",
        max_length=128,
        help_text="Phone number in any common format, provider message id or client reference (exact).",
    )
    # Each text filter is as long as its column at most: a longer value could never match.
    recipient = django_filters.CharFilter(
        field_name="recipient", max_length=40, help_text="Phone number in any common format."
    )
    region = django_filters.CharFilter(
        method="filter_nothing",
        max_length=2,
        validators=[two_letters],
        help_text="Country hint (ISO alpha-2) for a national-format number.",
    )
    provider_message_id = django_filters.CharFilter(max_length=128)
    client_reference = django_filters.CharFilter(max_length=128)
    status = django_filters.MultipleChoiceFilter(
        method="filter_status",
        distinct=False,
        choices=STATUS_FILTER_CHOICES,
        help_text="Stored status; `no_receipt` picks the messages still pending past their receipt SLA.",
    )
    error_class = django_filters.MultipleChoiceFilter(
        distinct=False, choices=ErrorClass.choices, help_text="Effective class."
    )
    catalog_class = django_filters.MultipleChoiceFilter(
        distinct=False,
        choices=ErrorClass.choices,
        help_text="The class the error catalog gives, whatever the provider said.",
    )
    class_source = django_filters.ChoiceFilter(choices=ClassSource.choices)
    provider_disagrees = StrictBooleanFilter(
        method="filter_provider_disagrees",
        help_text="The provider's own permanence flag contradicted the error catalog (Infobip).",
    )
    reason = django_filters.MultipleChoiceFilter(distinct=False, choices=reason_choices)
    flow = django_filters.CharFilter(max_length=64)
    connection = django_filters.ModelChoiceFilter(
        queryset=Connection.objects.all(), to_field_name="slug", help_text="Connection slug."
    )
    country = django_filters.CharFilter(method="filter_country", max_length=2, validators=[two_letters])
    submitted_after = InstantFilter(field_name="submitted_at", lookup_expr="gte")
    submitted_before = InstantFilter(field_name="submitted_at", lookup_expr="lt")
    # The filters a dashboard figure's link sets (receipts/rollups): each figure counts exactly
    # the messages these select, bucket bounds given by submitted_after/submitted_before.
    network = django_filters.CharFilter(max_length=64, help_text="Network the provider reported (MCC/MNC or name).")
    status_group = django_filters.ChoiceFilter(
        method="filter_status_group",
        choices=STATUS_GROUPS,
        help_text="delivered; failed (any final failure); pending (no final status yet).",
    )
    missing_receipt = StrictBooleanFilter(
        method="filter_missing_receipt",
        help_text="Reported past its receipt time limit and still without a final status.",
    )
    resend = StrictBooleanFilter(
        field_name="chain_root", lookup_expr="isnull", exclude=True, help_text="A resend of an earlier message."
    )
    flow_not_live = StrictBooleanFilter(
        help_text="Registered for a described flow that had no go decision yet (flagged at registration)."
    )
    unset = django_filters.MultipleChoiceFilter(
        method="filter_unset",
        choices=UNSET_FIELDS,
        help_text="Fields the message has no value for (no country, network or flow known).",
    )

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

    def filter_nothing(self, queryset: Any, name: str, value: str) -> Any:
        return queryset

    def filter_q(self, queryset: Any, name: str, value: SearchTerm) -> Any:
        return queryset.filter(value.condition())

    def filter_status(self, queryset: Any, name: str, value: list[str]) -> Any:
        if not value:
            return queryset
        stored = [status for status in value if status != NO_RECEIPT]
        wanted = Q(status__in=stored) if stored else Q(pk__in=[])
        if NO_RECEIPT in value:
            wanted |= no_receipt_condition(timezone.now())
        return queryset.filter(wanted)

    def filter_provider_disagrees(self, queryset: Any, name: str, value: bool | None) -> Any:
        if value is None:
            return queryset
        disagreeing = Q(class_source=ClassSource.PROVIDER) & ~Q(error_class=F("catalog_class"))
        return queryset.filter(disagreeing) if value else queryset.exclude(disagreeing)

    def filter_country(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(country=value.upper())

    def filter_status_group(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(status__in=STATUS_GROUP_MEMBERS[value]) if value else queryset

    def filter_missing_receipt(self, queryset: Any, name: str, value: bool | None) -> Any:
        # The rollups' "missing" (receipts/rollups/figures.py): reported, and still not final.
        missing = Q(no_receipt_at__isnull=False) & ~Q(status__in=FINAL_STATUSES)
        if value is None:
            return queryset
        return queryset.filter(missing) if value else queryset.exclude(missing)

    def filter_unset(self, queryset: Any, name: str, value: list[str]) -> Any:
        return queryset.filter(**{field: "" for field in value}) if value else queryset
