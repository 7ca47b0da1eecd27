"""Audit entries for actions that change no configuration row of their own (a feed delivery
replayed through the API): written as the history-based entries are, with who and what."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from dlrconsole.audit.models import AuditEntry


def audit_action(*, user: Any, instance: models.Model, changes: list[dict[str, Any]]) -> AuditEntry:
    """One "changed" entry on `instance` by `user`; `changes` as the audit page reads them
    ({"field", "label", "old", "new"})."""
    opts = instance._meta
    person = user if getattr(user, "pk", None) else None
    return AuditEntry.objects.create(
        at=timezone.now(),
        user=person,
        username=person.get_username() if person else "",
        model=opts.label_lower,
        model_name=str(opts.verbose_name),
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        action=AuditEntry.Action.CHANGED,
        changes=changes,
    )
