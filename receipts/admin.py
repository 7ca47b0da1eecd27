"""Admin for connections, messages and receipts. Secrets are write-only here: the form
replaces them, the pages only ever show their last characters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from dlrconsole.lib.big_tables import BigTableAdmin
from receipts.errors import shipped_entry
from receipts.models import (
    MAX_TEST_NUMBERS,
    Connection,
    ConnectionPrice,
    ErrorCodeOverride,
    Message,
    OutboxEvent,
    Receipt,
    validate_test_numbers,
)
from receipts.outbox import outbox_retry_parked
from receipts.phones import InvalidNumber, mask_number, parse_number
from receipts.rollups.models import Grain, Rollup


class ConnectionForm(forms.ModelForm[Connection]):
    public_url = forms.URLField(required=False, assume_scheme="https", max_length=500)
    new_secrets = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off"}),
        help_text="One secret per line. Leave empty to keep the current secrets; several lines accept "
        "several secrets at once, for rotation.",
    )

    test_numbers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=f"The team's phones that receive pilots' and fallback tests' messages in test mode, one per line "
        f"in E.164 (+33612345678), at most {MAX_TEST_NUMBERS}.",
    )

    class Meta:
        model = Connection
        fields = [
            "slug", "provider", "name", "public_url", "options", "allowed_ips", "rate_limit", "enabled", "test_mode",
            "test_numbers",
        ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["test_numbers"] = "\n".join(self.instance.test_numbers or [])

    def clean_test_numbers(self) -> list[str]:
        """Each line parsed (spaces and a leading 00 forgiven) into E.164; the model checks the rest."""
        numbers, errors = [], []
        for line in filter(None, (line.strip() for line in self.cleaned_data["test_numbers"].splitlines())):
            try:
                number = parse_number(line).e164
                validate_test_numbers([number])
            except InvalidNumber as exc:
                errors.append(f"{line[:20]}: {exc}")
            except ValidationError:
                errors.append(f"{line[:20]}: not a valid number (no such number range in its country)")
            else:
                numbers.append(number)
                if not line.startswith(("+", "00")):
                    errors.append(f"{line[:20]}: write it in E.164, e.g. +33612345678")
        if errors:
            raise ValidationError(errors)
        return numbers

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        lines = [line.strip() for line in (cleaned.get("new_secrets") or "").splitlines() if line.strip()]
        if lines:
            self.instance.secrets = lines
        elif not self.instance.secrets:
            self.add_error("new_secrets", "A connection needs at least one secret.")
        return cleaned

    def _update_errors(self, errors: ValidationError) -> None:
        # The model reports bad secrets on `secrets`, which this form edits as `new_secrets`
        # (e.g. stored secrets that do not suit a newly chosen provider).
        if hasattr(errors, "error_dict") and "secrets" in errors.error_dict:
            errors.error_dict["new_secrets"] = errors.error_dict.pop("secrets")
        super()._update_errors(errors)  # type: ignore[misc]  # a private hook the stubs omit


class ConnectionPriceInline(admin.TabularInline[ConnectionPrice, Connection]):
    """The price list, for providers whose receipts carry no price (a reported price wins)."""

    model = ConnectionPrice
    extra = 0
    fields = ["country", "price", "currency"]


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin[Connection]):
    form = ConnectionForm
    inlines = [ConnectionPriceInline]
    list_display = ["slug", "provider", "name", "enabled", "test_mode", "rate_limit", "webhook_path"]
    list_filter = ["provider", "enabled", "test_mode"]
    search_fields = ["slug", "name"]
    readonly_fields = ["secret_hints", "created_at", "updated_at"]

    @admin.display(description="Secrets (last characters)")
    def secret_hints(self, obj: Connection) -> str:
        return ", ".join(obj.secret_hints()) or "—"


class ReceiptInline(admin.TabularInline[Receipt, Message]):
    model = Receipt
    fields = readonly_fields = (
        "received_at",
        "provider_status",
        "status",
        "outcome",
        "error_code",
        "reason",
        "error_class",
        "catalog_class",
        "provider_timestamp",
    )
    extra = 0
    can_delete = False
    ordering = ["received_at", "id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# A message's text (an OTP, a reset code) is kept only so retries can resend it: no page shows
# it, to anyone, nor finds a message by it.
HIDDEN_MESSAGE_FIELDS = ("body",)
# Message.Meta.permissions; without it, numbers are masked and never searched (one search per
# guess would unmask them).
SEE_FULL_NUMBERS = "receipts.see_full_numbers"
RAW_RECEIPT_FIELDS = ("raw_body", "headers")


def _sees_numbers(request: HttpRequest) -> bool:
    return request.user.has_perm(SEE_FULL_NUMBERS)


def _masked(names: Any, request: HttpRequest) -> list[Any]:
    return [
        "masked_recipient" if name == "recipient" and not _sees_numbers(request) else name
        for name in names
        if _sees_numbers(request) or name not in RAW_RECEIPT_FIELDS
    ]


class CountryFilter(admin.SimpleListFilter):
    """The countries messages went to lately, from the day rollups: Django's own filter for a
    field without choices reads them with a DISTINCT over every message."""

    title = "country"
    parameter_name = "country"
    RECENT_DAYS = 90

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        since = timezone.now() - timedelta(days=self.RECENT_DAYS)
        days = Rollup.objects.filter(grain=Grain.DAY, bucket__gte=since).exclude(country="")
        countries = days.order_by("country").values_list("country", flat=True).distinct()
        return [(country, country) for country in countries]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        return queryset.filter(country=self.value()) if self.value() else queryset


@admin.register(Message)
class MessageAdmin(BigTableAdmin):
    list_display = ["provider_message_id", "connection", "recipient", "country", "flow", "status", "submitted_at"]
    list_filter = ["status", "error_class", "connection", CountryFilter]
    # Exact matches, each on its own index (receipts/models.py); a number in any spelling.
    search_fields = ["provider_message_id", "client_reference", "recipient"]
    readonly_fields = [f.name for f in Message._meta.fields if f.name not in HIDDEN_MESSAGE_FIELDS]
    fields = list(readonly_fields)
    inlines = [ReceiptInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).defer(*HIDDEN_MESSAGE_FIELDS)

    def get_list_display(self, request: HttpRequest) -> Any:
        return _masked(super().get_list_display(request), request)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return _masked(super().get_fields(request, obj), request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return _masked(super().get_readonly_fields(request, obj), request)

    def get_search_fields(self, request: HttpRequest) -> Any:
        return [name for name in super().get_search_fields(request) if name != "recipient" or _sees_numbers(request)]

    def search_value(self, request: HttpRequest, field: str, term: str) -> str | None:
        if field != "recipient":
            return term
        try:
            return parse_number(term).e164
        except InvalidNumber:
            return None

    @admin.display(description="recipient")
    def masked_recipient(self, obj: Message) -> str:
        return mask_number(obj.recipient)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Receipt)
class ReceiptAdmin(BigTableAdmin):
    list_display = ["received_at", "connection", "provider_message_id", "provider_status", "status", "outcome"]
    list_filter = ["status", "outcome", "connection"]
    # Receipts have no index of their own on the provider's id: a linked receipt is found
    # through its message's, a parked one through the parked receipts' index.
    search_fields = ["message__provider_message_id"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Receipt], search_term: str
    ) -> tuple[QuerySet[Receipt], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        linked_or_parked = Q(message__provider_message_id=term) | Q(message__isnull=True, provider_message_id=term)
        return queryset.filter(linked_or_parked), False

    readonly_fields = [f.name for f in Receipt._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # append-only

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Raw payloads carry the full number in every provider's own spelling.
        return _masked(super().get_fields(request, obj), request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return _masked(super().get_readonly_fields(request, obj), request)


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("pending", "To process"), ("retrying", "Failing, to try again"), ("failed", "Failed (parked)"),
                ("processed", "Processed")]  # fmt: skip

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> QuerySet[OutboxEvent]:
        unprocessed = queryset.filter(processed_at__isnull=True)
        return {
            "pending": unprocessed.filter(failed_at__isnull=True, failures=0),
            "retrying": unprocessed.filter(failed_at__isnull=True, failures__gt=0),
            "failed": unprocessed.filter(failed_at__isnull=False),
            "processed": queryset.filter(processed_at__isnull=False),
        }.get(self.value() or "", queryset)


@admin.register(OutboxEvent)
class OutboxEventAdmin(BigTableAdmin):
    """Read-only: what the rules must see, and the events a consumer failed on (receipts/outbox.py)."""

    list_display = ["id", "kind", "status", "message", "created_at", "processed_at", "failures", "retry_at",
                    "failed_at", "last_error"]  # fmt: skip
    list_filter = [OutboxStateFilter, "kind"]
    list_select_related = ["message"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    actions = ["retry_parked"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an event is a change that happened: never dropped by hand

    # Viewing is enough: putting a parked event back in line changes nothing anyone entered, and
    # the admin role, which inspects these records read-only, is who would do it.
    @admin.action(description="Try the failed events again", permissions=["view"])
    def retry_parked(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = outbox_retry_parked(list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} failed events will be tried again at the sweeper's next pass.")


@admin.register(ErrorCodeOverride)
class ErrorCodeOverrideAdmin(SimpleHistoryAdmin):
    """Corrections of the shipped error catalog. Classification in this process uses a saved
    change at once, other processes within DLR_ERROR_CATALOG_CACHE_SECONDS; "History" lists
    who changed what and when."""

    list_display = ["provider", "code", "reason", "error_class", "shipped_mapping", "updated_at"]
    list_filter = ["provider", "reason", "error_class"]
    search_fields = ["code", "note"]
    fields = ["provider", "code", "shipped_mapping", "reason", "error_class", "note", "updated_at"]
    readonly_fields = ["shipped_mapping", "updated_at"]
    history_list_display = ["reason", "error_class", "note"]

    @admin.display(description="Shipped catalog says")
    def shipped_mapping(self, obj: ErrorCodeOverride) -> str:
        if not obj.provider or not obj.code:
            return "—"
        found = shipped_entry(obj.provider, obj.code)
        if found is not None:
            table, entry = found
            return f"{entry.reason} ({entry.error_class or 'usual class'}; table {table})"
        return "not in the shipped catalog"
