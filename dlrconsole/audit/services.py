"""Audit entries for what people do that is not a configuration change but must be answerable
for: a resend against the error catalog's advice, with the reason given."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from dlrconsole.audit.models import AuditEntry


def audit_action(*, user: Any, obj: models.Model, changes: list[dict[str, Any]]) -> AuditEntry:
    """Record that `user` created `obj` (an attempt, say) with `changes` as [{field, label, old, new}]."""
    opts = obj._meta
    return AuditEntry.objects.create(
        at=timezone.now(),
        user=user if getattr(user, "is_authenticated", False) else None,
        username=user.get_username() if getattr(user, "is_authenticated", False) else "",
        model=opts.label_lower,
        model_name=str(opts.verbose_name),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action=AuditEntry.Action.CREATED,
        changes=changes,
    )
