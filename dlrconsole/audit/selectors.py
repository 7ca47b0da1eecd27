"""Reads for the audit page."""

from __future__ import annotations

from django.db.models import QuerySet
from simple_history.models import registered_models

from dlrconsole.audit.models import AuditEntry


def audit_entries(*, model: str = "", username: str = "") -> QuerySet[AuditEntry]:
    """Newest first; `model` is an app_label.modelname, `username` who made the change."""
    entries = AuditEntry.objects.order_by("-id")
    if model:
        entries = entries.filter(model=model)
    if username:
        entries = entries.filter(username=username)
    return entries


def audited_models() -> list[tuple[str, str]]:
    """(app_label.modelname, verbose name) of every model with history or an entry, by name."""
    found = {m._meta.label_lower: str(m._meta.verbose_name).capitalize() for m in registered_models.values()}
    # And what people act on without a history of its own (an alert acknowledged, an attempt).
    for model, name in AuditEntry.objects.order_by().values_list("model", "model_name").distinct():
        found.setdefault(model, str(name).capitalize())
    return sorted(found.items(), key=lambda item: item[1])


def audit_usernames() -> list[str]:
    return list(
        AuditEntry.objects.exclude(username="").order_by("username").values_list("username", flat=True).distinct()
    )
