"""Admin for rules (edited by admins) and for decisions and attempts (read-only records)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse_lazy
from django.utils.text import format_lazy

from dlrconsole.lib.big_tables import BigTableAdmin
from retries.models import Attempt, Decision, Rule, Step


class StepInline(admin.TabularInline[Step, Rule]):
    model = Step
    fields = ["position", "action", "count", "delays", "target_connection", "fallback_channel"]
    extra = 0


# Kept editable here (the audit log's tests and scripts use it), with the same checks as the
# console's editor at model level; the console's editor is the one built for people.
CONSOLE_EDITOR_NOTE = format_lazy(
    '<a href="{}">The policy editor</a> offers every condition as a choice, warns about shadowed '
    "rules and untested channels, and shows which rule applies: prefer it to the raw lists below.",
    reverse_lazy("console:policies"),
)


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin[Rule]):
    list_display = ["position", "name", "enabled", "deadline_seconds"]
    list_display_links = ["name"]
    list_editable = ["position", "enabled"]
    list_filter = ["enabled"]
    filter_horizontal = ["connections"]
    inlines = [StepInline]
    fieldsets = [
        (None, {"fields": ["name", "position", "enabled"], "description": CONSOLE_EDITOR_NOTE}),
        ("Which messages (empty = any)", {"fields": ["flows", "connections", "countries", "statuses",
                                                    "error_classes", "reasons"]}),
        ("Escalation", {"fields": ["deadline_seconds"]}),
    ]  # fmt: skip


class ReadOnlyAdmin(BigTableAdmin):
    """Decisions and attempts: records that grow with traffic, read only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "message", "action", "state", "rule", "why"]
    list_filter = ["action", "state"]
    raw_id_fields = ["message", "outbox_event", "after_attempt", "rule", "step"]


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
    list_display = ["due_at", "chain_root", "number", "outcome", "detail", "duration_ms"]
    list_filter = ["outcome"]
    raw_id_fields = ["decision", "step", "chain_root", "resend"]
