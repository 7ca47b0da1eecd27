"""Beat's entry points for alerts: thin, safe to run twice at once."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from alerts import evaluation, notify
from dlrconsole.lib.tasks import kick_taken


@shared_task(ignore_result=True)
def evaluate_alert_rules() -> int | None:
    return evaluation.evaluate_all(now=timezone.now())


@shared_task(ignore_result=True)
def send_notifications() -> int:
    kick_taken(notify.SEND_TASK)
    return notify.notifications_send_due()
