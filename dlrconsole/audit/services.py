"""Audit entries for what people do that is not a configuration change of its own but must be
answerable for: a resend against the error catalog's advice (with the reason given), a feed
delivery replayed through the API. Written as the history-based entries are, with who and what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models
from django.utils import timezone

from dlrconsole.audit.models import AuditEntry


def audit_action(
    *,
    user: Any,
    instance: models.Model,
    changes: list[dict[str, Any]],
    action: str = AuditEntry.Action.CHANGED,
    at: datetime | None = None,
) -> AuditEntry:
    """One entry on `instance` by `user` (now, unless `at`); `changes` as the audit page reads
    them ({"field", "label", "old", "new"}). The history-based entries are written here too."""
    opts = instance._meta
    person = user if getattr(user, "pk", None) else None
    return AuditEntry.objects.create(
        at=at or timezone.now(),
        user=person,
        username=person.get_username() if person else "",
        model=opts.label_lower,
        model_name=str(opts.verbose_name),
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        action=action,
        changes=changes,
    )
