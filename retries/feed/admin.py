"""Admin for the product feed: endpoints (edited; the secret is write-only) and the delivery
log (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from dlrconsole.lib.big_tables import BigTableAdmin
from retries.feed.models import FeedAttempt, FeedDelivery, ProductEndpoint
from retries.feed.services import feed_endpoint_enable


class ProductEndpointForm(forms.ModelForm[ProductEndpoint]):
    url = forms.URLField(max_length=500, assume_scheme="https")
    # Write-only: the page never renders the stored secret; blank keeps it.
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="whsec_ + base64 of 24 to 64 bytes. Leave blank to keep the current secret.",
    )

    class Meta:
        model = ProductEndpoint
        fields = ["name", "url", "secret", "event_types", "enabled"]

    def clean_secret(self) -> str:
        value: str = self.cleaned_data.get("secret") or ""
        if not value:
            if not self.instance.pk:
                raise forms.ValidationError("required for a new endpoint")
            return self.instance.secret
        return value


@admin.register(ProductEndpoint)
class ProductEndpointAdmin(admin.ModelAdmin[ProductEndpoint]):
    form = ProductEndpointForm
    list_display = [
        "name", "url", "owner", "secret_hint", "enabled", "paused_at", "disabled_reason", "consecutive_failures",
    ]  # fmt: skip
    list_filter = ["enabled"]
    # The owner (an API account) pauses, resumes and rotates through the API (docs/FEED.md).
    readonly_fields = [
        "secret_hint", "owner", "paused_at", "previous_secret_expires_at", "disabled_reason", "consecutive_failures",
        "created_at", "updated_at",
    ]  # fmt: skip
    actions = ["enable_endpoints"]

    @admin.display(description="secret")
    def secret_hint(self, obj: ProductEndpoint) -> str:
        return obj.secret_hint

    def save_model(self, request: HttpRequest, obj: ProductEndpoint, form: Any, change: bool) -> None:
        reenabled = change and "enabled" in form.changed_data and obj.enabled
        super().save_model(request, obj, form, change)
        if reenabled:
            feed_endpoint_enable(endpoint=obj)

    @admin.action(description="Enable and resume pending deliveries")
    def enable_endpoints(self, request: HttpRequest, queryset: QuerySet[ProductEndpoint]) -> None:
        resumed = sum(feed_endpoint_enable(endpoint=endpoint) for endpoint in queryset)
        self.message_user(request, f"{resumed} pending deliveries resumed.", messages.SUCCESS)


class FeedAttemptInline(admin.TabularInline[FeedAttempt, FeedDelivery]):
    model = FeedAttempt
    fields = ["number", "attempted_at", "status_code", "error", "duration_ms"]
    readonly_fields = ["number", "attempted_at", "status_code", "error", "duration_ms"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FeedDelivery)
class FeedDeliveryAdmin(BigTableAdmin):
    list_display = ["id", "event", "endpoint", "status", "attempts", "next_attempt_at", "last_status_code"]
    list_filter = ["status", "endpoint", "event__type"]
    # The message's provider id, exactly (its index answers).
    search_fields = ["message__provider_message_id"]
    list_select_related = ["event", "endpoint"]
    readonly_fields = [
        "event", "endpoint", "message", "status", "attempts", "next_attempt_at", "last_status_code",
        "last_error", "last_duration_ms", "delivered_at",
    ]  # fmt: skip
    fields = list(readonly_fields)
    inlines = [FeedAttemptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
