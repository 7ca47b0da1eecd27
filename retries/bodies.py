"""Message texts are kept only to resend them (the product registers them for that): erased
after DLR_MESSAGE_BODY_RETENTION_SECONDS, unless their chain still has an attempt to run,
which sends the original's text."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from receipts import store
from retries.models import Attempt


def message_bodies_erase(*, now: datetime | None = None) -> int:
    """Erase the texts past their retention; how many were erased."""
    now = now or timezone.now()
    waiting = Attempt.objects.filter(outcome__in=(Attempt.Outcome.SCHEDULED, Attempt.Outcome.RUNNING))
    return store.message_bodies_erase(
        submitted_before=now - timedelta(seconds=settings.DLR_MESSAGE_BODY_RETENTION_SECONDS),
        keep=waiting.values("chain_root_id"),
    )
