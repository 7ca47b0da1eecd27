"""Alerts support must look at. For now raised by rules (the `alert` action) about one message;
the monitoring work adds alert rules over metrics to the same lifecycle: open → acknowledged."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Alert(models.Model):
    class Source(models.TextChoices):
        RULE = "rule", "A rule's decision"

    source = models.CharField(max_length=16, choices=Source.choices)
    title = models.CharField(max_length=255)
    message = models.ForeignKey("receipts.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # One alert per decision, however often the decision's event is processed.
    decision = models.OneToOneField(
        "retries.Decision", null=True, blank=True, on_delete=models.CASCADE, related_name="alert"
    )
    created_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The open-alerts list (admin, console), newest first.
            models.Index(fields=["-created_at"], name="alert_open_idx", condition=Q(acknowledged_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return self.title
