"""Open and acknowledged alerts; acknowledging is the only change allowed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from alerts.models import Alert
from alerts.services import alert_acknowledge
from dlrconsole.lib.big_tables import BigTableAdmin


@admin.register(Alert)
class AlertAdmin(BigTableAdmin):
    list_display = ["created_at", "title", "source", "severity", "state", "acknowledged_at", "acknowledged_by"]
    list_filter = ["source", "state", "severity", ("acknowledged_at", admin.EmptyFieldListFilter)]
    raw_id_fields = ["message", "decision", "rule"]
    actions = ["acknowledge"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Acknowledge", permissions=["view"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        done = sum(alert_acknowledge(alert=alert, user=request.user) for alert in queryset)
        self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)
