"""Beat's entry point for scheduled reports."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from alerts.reports.services import reports_send_due


@shared_task(ignore_result=True)
def send_due_reports() -> int:
    return len(reports_send_due(now=timezone.now()))
