"""Flows: a product use case ("login OTP, France") with its owners, countries, volume, receipt
SLA and KPIs, the evidence of its fallback tests and its go/no-go decisions.

The flow sits this low (under receipts' models) so that the receipt SLA (receipts/sla.py) and
registration can read it. What it is judged against lives above: its policy is the retry rules
that match it (retries), its KPIs' alert rules and its reports are the alerts app's; the
readiness that reads them all is composed in alerts/flow_readiness.py."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from dlrconsole.lib.history import AuditedHistory

MAX_COUNTRIES = 50
# A receipt SLA shorter than this is network jitter, longer than 3 days no provider keeps trying.
MIN_SLA_SECONDS = 5
MAX_SLA_SECONDS = 3 * 24 * 3600


class Channel(models.TextChoices):
    SMS = "sms", _("SMS only")
    SMS_FALLBACK = "sms_fallback", _("SMS, then a fallback channel (e-mail, voice or app)")


class Priority(models.TextChoices):
    CRITICAL = "critical", _("Critical: users are blocked without it (log-in, payment)")
    HIGH = "high", _("High")
    NORMAL = "normal", _("Normal")
    LOW = "low", _("Low: informational, marketing")


class Launch(models.TextChoices):
    UNDECIDED = "undecided", _("No decision yet")
    GO = "go", _("Go")
    NO_GO = "no_go", _("No-go")


def validate_countries(value: object) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(code, str) for code in value):
        raise ValidationError(_("Choose at least one country."))
    if len(value) > MAX_COUNTRIES:
        raise ValidationError(_("At most %(limit)s countries."), params={"limit": MAX_COUNTRIES})
    if unknown := sorted({code.upper() for code in value} - phonenumbers.SUPPORTED_REGIONS):
        raise ValidationError(_("Unknown country code: %(codes)s (ISO 3166, e.g. FR)."), params={"codes": unknown})


class Flow(models.Model):
    """`slug` is the `flow` string messages carry (Message.flow): the flow's messages are found
    by it, never by a foreign key, so a product may send before the flow is described."""

    slug = models.SlugField(max_length=64, unique=True, help_text=_("The `flow` the product sends with each message."))
    name = models.CharField(max_length=120)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.SMS)
    countries = models.JSONField(default=list, validators=[validate_countries])
    connections = models.ManyToManyField(
        "receipts.Connection", blank=True, related_name="+", help_text=_("The routes the flow is sent through.")
    )
    monthly_volume = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1_000_000_000)], help_text=_("Expected messages a month.")
    )
    sla_rate = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal(95),
        validators=[MinValueValidator(Decimal(1)), MaxValueValidator(Decimal(100))],
        help_text=_("Percent of messages delivered within the SLA's seconds."),
    )  # fmt: skip
    sla_seconds = models.PositiveIntegerField(
        validators=[MinValueValidator(MIN_SLA_SECONDS), MaxValueValidator(MAX_SLA_SECONDS)],
        help_text=_("Seconds within which a message must be delivered; a message without a receipt by then is "
                    "acted on as missing (the flow's receipt SLA)."),
    )  # fmt: skip
    adaptive_sla = models.BooleanField(
        default=False,
        help_text=_("Act on a missing receipt as soon as the route's own recent time to delivery (its 99th "
                    "percentile) has passed, never sooner than the floor nor later than the SLA."),
    )  # fmt: skip
    adaptive_floor_seconds = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(MAX_SLA_SECONDS)],
        help_text=_("The shortest wait an adaptive SLA may choose."),
    )  # fmt: skip
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    technical_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    business_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The latest go/no-go, kept here for registration's flag; the decisions are its history.
    launch = models.CharField(max_length=9, choices=Launch.choices, default=Launch.UNDECIDED)
    created_at = models.DateTimeField(auto_now_add=True)
    history = AuditedHistory(m2m_fields=["connections"])

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if isinstance(self.countries, list):
            self.countries = sorted({str(code).strip().upper() for code in self.countries})
        if self.adaptive_sla and self.sla_seconds and self.adaptive_floor_seconds > self.sla_seconds:
            raise ValidationError({"adaptive_floor_seconds": _("The floor must not be longer than the SLA.")})


class KpiMetric(models.TextChoices):
    # The values are the alert rules' metric names (alerts.models.Metric): a KPI becomes one.
    DELIVERY_RATE = "delivery_rate", _("Delivery rate (%)")
    MISSING_RATE = "missing_rate", _("Missing-receipt rate (%)")
    P95_DELIVERY = "p95_delivery", _("95th percentile time to delivery (seconds)")


# Which way a KPI goes wrong: a delivery rate falls, the others rise.
KPI_BAD_DIRECTION: dict[str, str] = {
    KpiMetric.DELIVERY_RATE: "below",
    KpiMetric.MISSING_RATE: "above",
    KpiMetric.P95_DELIVERY: "above",
}
KPI_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    KpiMetric.DELIVERY_RATE: (Decimal(0), Decimal(100)),
    KpiMetric.MISSING_RATE: (Decimal(0), Decimal(100)),
    KpiMetric.P95_DELIVERY: (Decimal(0), Decimal(3600)),
}


class FlowKpi(models.Model):
    """A figure the flow is held to, and the threshold past which someone must be told."""

    # No index of its own: flow_kpi_one_per_metric leads with it.
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="kpis", db_index=False)
    metric = models.CharField(max_length=24, choices=KpiMetric.choices)
    threshold = models.DecimalField(max_digits=12, decimal_places=2)
    window_minutes = models.PositiveIntegerField(
        default=15, validators=[MinValueValidator(5), MaxValueValidator(1440)], help_text=_("Measured over.")
    )
    history = AuditedHistory()

    class Meta:
        ordering = ["flow_id", "metric", "id"]
        constraints = [models.UniqueConstraint(fields=["flow", "metric"], name="flow_kpi_one_per_metric")]

    def __str__(self) -> str:
        return f"{self.get_metric_display()} {self.bad_direction} {self.threshold}"

    @property
    def bad_direction(self) -> str:
        return KPI_BAD_DIRECTION.get(self.metric, "above")

    def clean(self) -> None:
        low, high = KPI_RANGES.get(self.metric, (Decimal(0), Decimal(0)))
        if self.threshold is not None and not low <= self.threshold <= high:
            raise ValidationError({"threshold": _("Between %(low)s and %(high)s.") % {"low": low, "high": high}})


class FallbackTest(models.Model):
    """One run of "Test the fallback": the flow's escalation played end to end on a test message,
    and what it left as evidence (what was sent, what came back, when), kept for the launch."""

    class Outcome(models.TextChoices):
        PASSED = "passed", _("Passed: the escalation reached the user")
        FAILED = "failed", _("Failed")

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="fallback_tests")
    country = models.CharField(max_length=2)
    connection = models.ForeignKey("receipts.Connection", null=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    run_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    summary = models.CharField(max_length=255)
    # [{"at": ISO time, "kind": "sent" | "received" | "decided" | "note", "text": ...}], in order.
    evidence = models.JSONField(default=list)
    # The test message (kept: its page shows the whole timeline).
    message = models.ForeignKey("receipts.Message", null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.flow_id} {self.outcome} {self.started_at:%Y-%m-%d %H:%M}"

    def evidence_entries(self) -> list[dict[str, Any]]:
        """The evidence with its times as datetimes, for the pages to show in the reader's zone."""
        return [{**entry, "at": datetime.fromisoformat(entry["at"])} for entry in self.evidence]


class LaunchDecision(models.Model):
    """A go/no-go: who decided, when, why, and the readiness as it was at that moment."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="decisions")
    decision = models.CharField(
        max_length=9, choices=[(Launch.GO, Launch.GO.label), (Launch.NO_GO, Launch.NO_GO.label)]
    )
    decided_at = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    rationale = models.TextField(max_length=4000)
    # The readiness items then: [{"key", "label", "ok", "missing"}]; ready: every item ok.
    snapshot = models.JSONField(default=list)
    ready = models.BooleanField()

    class Meta:
        ordering = ["-decided_at", "-id"]

    def __str__(self) -> str:
        return f"{self.flow_id} {self.decision} {self.decided_at:%Y-%m-%d}"


class RouteTiming(models.Model):
    """A route's recent time to delivery (connection and country), learned from the rollups'
    histograms (receipts/rollups/route_timing.py): what an adaptive receipt SLA waits for."""

    # No index of its own: route_timing_one_per_route leads with it.
    connection = models.ForeignKey("receipts.Connection", on_delete=models.CASCADE, related_name="+", db_index=False)
    country = models.CharField(max_length=2, blank=True)
    p99_seconds = models.FloatField()
    delivered = models.PositiveIntegerField(help_text=_("Deliveries the percentile was read from."))
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            # One figure per route; the learning pass upserts on it.
            models.UniqueConstraint(fields=["connection", "country"], name="route_timing_one_per_route"),
            models.CheckConstraint(condition=Q(p99_seconds__gte=0), name="route_timing_p99_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.country or '*'} p99 {self.p99_seconds:.0f} s"
