"""Alerts support must look at, in one lifecycle whatever raised them: a rule about one message
(the `alert` decision action) or an alert rule over the metrics (evaluation.py). An alert opens
once, is resolved once (by its rule's evaluation, or by a person for a per-message alert), can
be acknowledged, commented and snoozed, and keeps its history of events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from alerts.channels.registry import channel_choices, channel_secret_keys, validate_channel_config
from dlrconsole.lib.history import AuditedHistory
from dlrconsole.lib.secrets_at_rest import EncryptedJSONField
from receipts.reasons import ErrorClass, reason_choices


class Severity(models.TextChoices):
    # Stored as words, sorted by SEVERITY_ORDER: critical first.
    CRITICAL = "critical", _("Critical")
    WARNING = "warning", _("Warning")
    INFO = "info", _("Info")


SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


class Metric(models.TextChoices):
    DELIVERY_RATE = "delivery_rate", _("Delivery rate (% of finished messages delivered)")
    CLASS_RATE = "class_rate", _("Failure rate of an error class (% of messages)")
    REASON_RATE = "reason_rate", _("Failure rate of a reason (% of messages)")
    MISSING_RATE = "missing_rate", _("Missing-receipt rate (% of messages)")
    P95_DELIVERY = "p95_delivery", _("95th percentile time to delivery (seconds)")
    VOLUME_WEEK = "volume_week", _("Volume against the same time last week (%)")
    SIGNATURE_FAILURES = "signature_failures", _("Webhooks refused for a wrong signature or token (count)")
    TRUST_SCORE = "trust_score", _('Route trust score (0-100: how far its "delivered" can be trusted)')
    OUTBOX_LAG = "outbox_lag", _("System: outbox lag (seconds of the oldest unprocessed change)")
    FEED_BACKLOG = "feed_backlog", _("System: product feed backlog (deliveries due)")
    OVERDUE_ATTEMPTS = "overdue_attempts", _("System: overdue resends and fallbacks")
    BEAT_LATE = "beat_late", _("System: scheduled tasks late (seconds past their interval)")


# Metrics about the whole system: no scope, no volume.
SYSTEM_METRICS = frozenset({Metric.OUTBOX_LAG, Metric.FEED_BACKLOG, Metric.OVERDUE_ATTEMPTS, Metric.BEAT_LATE})
# The unit each metric is shown in, and the thresholds that make sense for it.
METRIC_UNITS: dict[str, str] = {
    Metric.DELIVERY_RATE: "%", Metric.CLASS_RATE: "%", Metric.REASON_RATE: "%", Metric.MISSING_RATE: "%",
    Metric.P95_DELIVERY: "s", Metric.VOLUME_WEEK: "%", Metric.OUTBOX_LAG: "s", Metric.FEED_BACKLOG: "",
    Metric.OVERDUE_ATTEMPTS: "", Metric.BEAT_LATE: "s", Metric.SIGNATURE_FAILURES: "",
    Metric.OVERDUE_ATTEMPTS: "", Metric.BEAT_LATE: "s", Metric.TRUST_SCORE: "",
}  # fmt: skip
THRESHOLD_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    Metric.DELIVERY_RATE: (Decimal(0), Decimal(100)),
    Metric.CLASS_RATE: (Decimal(0), Decimal(100)),
    Metric.REASON_RATE: (Decimal(0), Decimal(100)),
    Metric.MISSING_RATE: (Decimal(0), Decimal(100)),
    Metric.P95_DELIVERY: (Decimal(0), Decimal(3600)),  # the histograms stop at an hour
    Metric.VOLUME_WEEK: (Decimal(0), Decimal(10000)),
    Metric.OUTBOX_LAG: (Decimal(0), Decimal(86400)),
    Metric.FEED_BACKLOG: (Decimal(0), Decimal(10_000_000)),
    Metric.OVERDUE_ATTEMPTS: (Decimal(0), Decimal(10_000_000)),
    Metric.BEAT_LATE: (Decimal(0), Decimal(86400)),
    Metric.SIGNATURE_FAILURES: (Decimal(0), Decimal(10_000_000)),
    Metric.TRUST_SCORE: (Decimal(0), Decimal(100)),
}
# Counts with no messages under them: the minimum volume does not apply.
COUNT_METRICS = frozenset({*SYSTEM_METRICS, Metric.SIGNATURE_FAILURES})


class AlertChannel(models.Model):
    """Where alerts are sent (channels/): an e-mail list, a chat room's incoming webhook, a
    signed webhook, a PagerDuty service. Secrets in `config` are write-only (console form) and
    encrypted at rest."""

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=32, choices=channel_choices)
    config = EncryptedJSONField(default=dict, blank=True)
    per_message_alerts = models.BooleanField(
        default=False, help_text=_("Also send the alerts raised by rules about one message.")
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = AuditedHistory(secret_keys={"config": lambda channel: channel_secret_keys(channel.kind)})

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            validate_channel_config(self.kind, self.config)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class AlertRule(models.Model):
    """A condition over the rollups' figures (or the system's health) that opens an alert when it
    has held for `hold_minutes` with at least `min_volume` messages, and resolves it when it has
    not held for `cooldown_minutes`. The evaluation's state is kept on the rule (quiet fields:
    not configuration, not audited)."""

    class Comparison(models.TextChoices):
        BELOW = "below", _("falls below")
        ABOVE = "above", _("rises above")

    class State(models.TextChoices):
        OK = "ok", _("Not holding")
        PENDING = "pending", _("Holding, not long enough yet")
        FIRING = "firing", _("Firing")

    WINDOW_CHOICES = [(5, _("5 minutes")), (15, _("15 minutes")), (30, _("30 minutes")), (60, _("1 hour")),
                      (180, _("3 hours")), (360, _("6 hours")), (1440, _("24 hours"))]  # fmt: skip
    HOLD_CHOICES = [(0, _("at once")), (1, _("1 minute")), (5, _("5 minutes")), (10, _("10 minutes")),
                    (15, _("15 minutes")), (30, _("30 minutes")), (60, _("1 hour"))]  # fmt: skip

    name = models.CharField(max_length=120)
    metric = models.CharField(max_length=24, choices=Metric.choices)
    error_class = models.CharField(
        max_length=16, blank=True, choices=ErrorClass.choices, help_text=_("For the failure rate of a class.")
    )
    reason = models.CharField(
        max_length=48, blank=True, choices=reason_choices, help_text=_("For the failure rate of a reason.")
    )
    # Scope, each optional: empty means every one.
    connection = models.ForeignKey(
        "receipts.Connection", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    country = models.CharField(max_length=2, blank=True, help_text=_("ISO country code, e.g. FR; empty: all."))
    network = models.CharField(max_length=64, blank=True, help_text=_("MCC/MNC or operator as receipts carry it."))
    flow = models.SlugField(max_length=64, blank=True)
    window_minutes = models.PositiveIntegerField(choices=WINDOW_CHOICES, default=15)
    comparison = models.CharField(max_length=8, choices=Comparison.choices, default=Comparison.BELOW)
    threshold = models.DecimalField(max_digits=12, decimal_places=2)
    min_volume = models.PositiveIntegerField(
        default=50, help_text=_("Messages the window must count before the figure means anything.")
    )
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    hold_minutes = models.PositiveIntegerField(
        choices=HOLD_CHOICES, default=5, help_text=_("How long the condition must hold before the alert fires.")
    )
    cooldown_minutes = models.PositiveIntegerField(
        choices=HOLD_CHOICES[1:], default=5,
        help_text=_("How long the condition must stop holding before the alert resolves (damps flapping)."),
    )  # fmt: skip
    channels = models.ManyToManyField(AlertChannel, blank=True, related_name="rules")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The flow KPI this rule watches, when it was made from one (alerts/flow_kpis.py); the
    # flow's readiness checks the rule still matches it.
    kpi = models.OneToOneField(
        "flows.FlowKpi", null=True, blank=True, on_delete=models.SET_NULL, related_name="alert_rule"
    )

    # Evaluation state.
    state = models.CharField(max_length=8, choices=State.choices, default=State.OK)
    holding_since = models.DateTimeField(null=True, blank=True)
    clearing_since = models.DateTimeField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_volume = models.PositiveIntegerField(null=True, blank=True)

    history = AuditedHistory(
        quiet_fields=["state", "holding_since", "clearing_since", "evaluated_at", "last_value", "last_volume"]
    )

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["id"], name="alert_rule_enabled_idx", condition=Q(enabled=True))]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.country = self.country.upper()
        super().save(*args, **kwargs)

    @property
    def unit(self) -> str:
        return METRIC_UNITS.get(self.metric, "")

    @property
    def is_system(self) -> bool:
        return self.metric in SYSTEM_METRICS

    @property
    def counts_messages(self) -> bool:
        """Whether the figure stands on a volume of messages (and the minimum volume applies)."""
        return self.metric not in COUNT_METRICS

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        low, high = THRESHOLD_RANGES.get(self.metric, (Decimal(0), Decimal(0)))
        if self.threshold is not None and not low <= self.threshold <= high:
            unit = METRIC_UNITS.get(self.metric, "")
            errors["threshold"] = _(
                "For this metric the threshold is between %(low)s%(unit)s and %(high)s%(unit)s."
            ) % {"low": low, "high": high, "unit": unit}
        if self.metric == Metric.CLASS_RATE and not self.error_class:
            errors["error_class"] = _("Choose the error class whose failure rate is watched.")
        if self.metric != Metric.CLASS_RATE and self.error_class:
            errors["error_class"] = _("Only the failure rate of a class uses an error class.")
        if self.metric == Metric.REASON_RATE and not self.reason:
            errors["reason"] = _("Choose the reason whose failure rate is watched.")
        if self.metric != Metric.REASON_RATE and self.reason:
            errors["reason"] = _("Only the failure rate of a reason uses a reason.")
        if self.metric in SYSTEM_METRICS:
            for name in ("connection", "country", "network", "flow"):
                if getattr(self, name if name != "connection" else "connection_id"):
                    errors[name] = _("System metrics are about the whole system: leave the scope empty.")
        if self.metric == Metric.SIGNATURE_FAILURES:
            for name in ("country", "network", "flow"):
                if getattr(self, name):
                    errors[name] = _("Refused webhooks are counted per connection: leave this empty.")
        if self.country and not (len(self.country) == 2 and self.country.isalpha()):
            errors["country"] = _("Two letters, e.g. FR.")
        if errors:
            raise ValidationError(errors)


class Alert(models.Model):
    class Source(models.TextChoices):
        RULE = "rule", _("A rule about one message")
        ALERT_RULE = "alert_rule", _("An alert rule over the metrics")

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        RESOLVED = "resolved", _("Resolved")

    source = models.CharField(max_length=16, choices=Source.choices)
    title = models.CharField(max_length=255)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    message = models.ForeignKey("receipts.Message", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # One alert per decision, however often the decision's event is processed.
    decision = models.OneToOneField(
        "retries.Decision", null=True, blank=True, on_delete=models.CASCADE, related_name="alert"
    )
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    # The figure that fired it, its volume and the threshold then (the rule may change later).
    value = models.FloatField(null=True, blank=True)
    volume = models.PositiveIntegerField(null=True, blank=True)
    threshold = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    snoozed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The open-alerts list (admin, console), newest first.
            models.Index(fields=["-created_at"], name="alert_open_idx", condition=Q(state="open")),
        ]
        constraints = [
            # A rule has at most one open alert: firing twice is a bug the database refuses.
            models.UniqueConstraint(fields=["rule"], name="alert_one_open_per_rule", condition=Q(state="open")),
        ]

    def __str__(self) -> str:
        return self.title


class AlertEvent(models.Model):
    """What happened to an alert, in order: its history on the console page."""

    class Kind(models.TextChoices):
        FIRED = "fired", _("Fired")
        RESOLVED = "resolved", _("Resolved")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        COMMENTED = "commented", _("Commented")
        SNOOZED = "snoozed", _("Snoozed")
        NOTIFIED = "notified", _("Notified")

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.alert_id}"


class Notification(models.Model):
    """One alert event (fired, resolved, or a test) to send to one channel: created with the
    event, in its transaction, then sent and retried with backoff (notify.py) until the peer
    takes it or MAX_TRIES are spent."""

    class Event(models.TextChoices):
        FIRED = "fired", _("Fired")
        RESOLVED = "resolved", _("Resolved")
        TEST = "test", _("Test")

    class State(models.TextChoices):
        PENDING = "pending", _("Not sent yet")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Gave up")

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="notifications")
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=8, choices=Event.choices)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    tries = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["due_at"], name="notification_due_idx", condition=Q(state="pending"))]

    def __str__(self) -> str:
        return f"{self.event} to {self.channel_id}"


class NotificationAttempt(models.Model):
    """One try of a notification: when, how it went, the peer's status code. Never the peer's
    reply body (it may echo what we sent, or hold its own secrets)."""

    class Outcome(models.TextChoices):
        SENT = "sent", _("Accepted")
        RETRY = "retry", _("Failed, tried again later")
        FAILED = "failed", _("Failed for good")

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempts")
    at = models.DateTimeField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.outcome} {self.notification_id}"
