"""Rules, the decisions they make and the attempts that carry them out; how to send through a
connection or a fallback channel."""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from dlrconsole.lib.history import AuditedHistory
from dlrconsole.lib.secrets_at_rest import EncryptedJSONField
from receipts.reasons import REASONS, ErrorClass
from receipts.statuses import NO_RECEIPT, Status
from retries.actions.registry import action_choices
from retries.senders.base import Sender
from retries.senders.registry import SENDERS, get_sender, sender_choices, validate_config


class Rule(models.Model):
    """A retry policy: which messages it takes (conditions) and what to do for them (an
    escalation of steps, retries/escalation.py), under a deadline. Rules are tried in `position`
    order; the first whose every non-empty condition matches decides, and a chain of resends
    stays with the rule that took its first failure."""

    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=100, help_text="Lower positions are tried first.")
    enabled = models.BooleanField(default=True)
    # Conditions; an empty list matches anything. `statuses` may hold `no_receipt`.
    flows = models.JSONField(default=list, blank=True)
    connections = models.ManyToManyField("receipts.Connection", blank=True, related_name="+")
    countries = models.JSONField(default=list, blank=True)
    statuses = models.JSONField(default=list, blank=True)
    error_classes = models.JSONField(default=list, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    # After this long since the original submission nothing more is sent (an OTP after 5 min).
    deadline_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Who changed what (the audit log), the connections a rule applies to included.
    history = AuditedHistory(m2m_fields=["connections"])

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name

    # Set by carry(): the connections and steps the rule answers with instead of reading its
    # relations (None: read them).
    carried_connection_ids: frozenset[int] | None = None
    carried_steps: tuple[Step, ...] | None = None

    def carry(self, connection_ids: Iterable[int], steps: Iterable[Step]) -> None:
        """Answer connection_ids() and step_list() with these from now on: an unsaved draft of
        the policy editor (retries/policy_services.py), not yet stored, or a rule of the rule
        cache, read once with its rules (retries/rule_cache.py). Every decision asks each rule
        it tries; going through the related managers each time (a manager and a queryset built
        per call, even over prefetched rows) was ~7 % of a worker's CPU at 300 receipts/s."""
        self.carried_connection_ids = frozenset(connection_ids)
        self.carried_steps = tuple(steps)

    def connection_ids(self) -> frozenset[int]:
        """The connections the rule is limited to (none: any)."""
        if self.carried_connection_ids is not None:
            return self.carried_connection_ids
        return frozenset(connection.pk for connection in self.connections.all()) if self.pk else frozenset()

    def step_list(self) -> list[Step]:
        """Its escalation's steps in order."""
        if self.carried_steps is not None:
            return list(self.carried_steps)
        return list(self.steps.all()) if self.pk else []

    def clean(self) -> None:
        allowed = {
            "statuses": {*Status.values, NO_RECEIPT},
            "error_classes": set(ErrorClass.values),
            "reasons": set(REASONS),
        }
        errors: dict[str, str] = {}
        for name in ("flows", "countries", "statuses", "error_classes", "reasons"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
                errors[name] = "a list of names"
            elif name in allowed and (unknown := set(value) - allowed[name]):
                errors[name] = f"unknown: {', '.join(sorted(unknown))}"
        if "countries" not in errors and isinstance(self.countries, list):
            # Messages carry upper-case ISO codes: "fr" would be saved and never match.
            self.countries = [str(code).strip().upper() for code in self.countries]
            if unknown_countries := sorted(set(self.countries) - phonenumbers.SUPPORTED_REGIONS):
                errors["countries"] = f"unknown country code: {', '.join(unknown_countries)} (ISO 3166, e.g. FR)"
        if errors:
            raise ValidationError(errors)


MAX_STEP_COUNT = 10
MAX_DELAY_SECONDS = 7 * 24 * 3600


class Step(models.Model):
    """One step of a rule's escalation: an action (retries/actions/), how many attempts for an
    action that sends, the wait before each, and the connection or channel it sends through."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=1)
    action = models.CharField(max_length=16, choices=action_choices)
    count = models.PositiveSmallIntegerField(default=1, help_text="Attempts, for an action that sends.")
    # Seconds to wait before attempt 1, 2, ... of this step; the last value repeats.
    delays = models.JSONField(default=list, blank=True)
    target_connection = models.ForeignKey(
        "receipts.Connection", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="For 'retry on another connection'.",
    )  # fmt: skip
    fallback_channel = models.ForeignKey(
        "retries.FallbackChannel", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="For 'send through a fallback channel'.",
    )  # fmt: skip
    history = AuditedHistory()

    class Meta:
        ordering = ["rule_id", "position", "id"]

    def __str__(self) -> str:
        return f"{self.rule_id}.{self.position} {self.action}"

    def delay_before(self, attempt_index: int) -> int:
        """Seconds before this step's attempt `attempt_index` (0 for its first)."""
        if not self.delays:
            return 0
        return int(self.delays[min(attempt_index, len(self.delays) - 1)])

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not 1 <= (self.count or 0) <= MAX_STEP_COUNT:
            errors["count"] = f"between 1 and {MAX_STEP_COUNT} attempts"
        if not isinstance(self.delays, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_DELAY_SECONDS for s in self.delays
        ):
            errors["delays"] = f"whole seconds from 0 to {MAX_DELAY_SECONDS}, e.g. [30, 120]"
        elif len(self.delays) > MAX_STEP_COUNT:
            errors["delays"] = f"at most {MAX_STEP_COUNT} waits"
        if errors:
            raise ValidationError(errors)


class Decision(models.Model):
    """What a rule decided: one step of its escalation taken, scheduled or skipped for a
    message, once per event or ended attempt, however often it is processed."""

    class State(models.TextChoices):
        RECORDED = "recorded", pgettext_lazy("decision state", "Recorded")  # notify, alert, nothing: no attempt to run
        SCHEDULED = "scheduled", pgettext_lazy("decision state", "Attempt scheduled")
        SKIPPED = "skipped", pgettext_lazy("decision state", "Not acted on")  # see `skip_reason`
        CANCELLED = "cancelled", pgettext_lazy("decision state", "Cancelled")  # the chain was delivered meanwhile

    class SkipReason(models.TextChoices):
        # Nothing more is owed to anybody: the product is not told of these.
        CHAIN_DELIVERED = "chain_delivered", _("The chain was already delivered")
        ALREADY_RETRIED = "already_retried", _("This message was already retried")
        # A retry was wanted and cannot happen: the failure is final, and the product is told.
        MAX_ATTEMPTS = "max_attempts", _("Every step of the rule was taken")
        DEADLINE = "deadline", _("Past the rule's deadline")
        # The step cannot run (no target configured; the message lacks its text or a fallback
        # address): the escalation goes on to its next step.
        NO_TARGET = "no_target", _("The step names no connection or channel")
        MISSING_INPUT = "missing_input", _("The message lacks what the step needs")

        @property
        def tells_product(self) -> bool:
            return self in (type(self).MAX_ATTEMPTS, type(self).DEADLINE)

    message = models.ForeignKey("receipts.Message", on_delete=models.CASCADE, related_name="decisions")
    # What made the rule act: an outbox event (a status change, a missing receipt), or an attempt
    # that ended (a fallback sent, a send that failed for good). An event that takes several
    # steps at once (tell the product, then retry) records a decision per step. Neither: a
    # resend asked for by a person (`requested_by`).
    outbox_event = models.ForeignKey(
        "receipts.OutboxEvent", null=True, blank=True, on_delete=models.CASCADE, related_name="decisions"
    )
    after_attempt = models.ForeignKey(
        "retries.Attempt", null=True, blank=True, on_delete=models.CASCADE, related_name="next_decisions"
    )
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    action = models.CharField(max_length=16, choices=action_choices)
    state = models.CharField(max_length=16, choices=State.choices)
    # Why a decision was not acted on, as a choice code can test; `why` says it in words.
    skip_reason = models.CharField(max_length=16, choices=SkipReason.choices, blank=True, default="")
    why = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.action} for {self.message_id}"


class Attempt(models.Model):
    """One execution of a decision (a resend or a fallback), idempotent by its key."""

    class Outcome(models.TextChoices):
        SCHEDULED = "scheduled", pgettext_lazy("attempt outcome", "Scheduled")
        RUNNING = "running", pgettext_lazy("attempt outcome", "Running")
        SUCCEEDED = "succeeded", pgettext_lazy("attempt outcome", "Succeeded")
        FAILED = "failed", pgettext_lazy("attempt outcome", "Failed")
        CANCELLED = "cancelled", pgettext_lazy("attempt outcome", "Cancelled")

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="attempts")
    # The escalation step it carries out; empty for a resend asked for by a person.
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="attempts")
    # The original message of the chain this attempt belongs to (resends point to it too).
    chain_root = models.ForeignKey("receipts.Message", on_delete=models.CASCADE, related_name="chain_attempts")
    number = models.PositiveIntegerField(help_text="1 for the first resend of the chain, 2 for the next, ...")
    idempotency_key = models.CharField(max_length=64)
    # What to run, fixed when scheduled so that editing a rule later does not change an
    # attempt already promised: a resend through `connection`, or a send on `channel`.
    action = models.CharField(max_length=16, choices=action_choices, default="retry_same")
    connection = models.ForeignKey(
        "receipts.Connection", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.ForeignKey("retries.FallbackChannel", null=True, blank=True, on_delete=models.PROTECT)
    deadline_at = models.DateTimeField(null=True, blank=True)
    # When it may run. While it runs, a lease: a worker that dies mid-send leaves it RUNNING
    # with this in the past, and the runner claims it again (retries/attempts.py).
    due_at = models.DateTimeField()
    tries = models.PositiveIntegerField(default=0, help_text="Executions so far, including sender errors.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SCHEDULED)
    detail = models.CharField(max_length=255, blank=True)
    response_summary = models.CharField(max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    resend = models.ForeignKey(
        "receipts.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="sent_by_attempt"
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A constraint, not unique=True: that adds a LIKE index nothing reads, written with
            # every attempt (dlrconsole/lib/redundant_indexes.py).
            models.UniqueConstraint(fields=["idempotency_key"], name="attempt_unique_idempotency_key"),
        ]
        indexes = [
            # The attempt runner's scan: attempts to run, or whose runner's lease ran out.
            models.Index(fields=["due_at"], name="attempt_due_idx", condition=Q(outcome__in=["scheduled", "running"])),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.chain_root_id}"


class ConnectionSender(models.Model):
    """How to send through a connection: its provider's send API, with credentials. A retry on
    a connection without one fails with a reason that says so."""

    connection = models.OneToOneField("receipts.Connection", on_delete=models.CASCADE, related_name="sender")
    kind = models.CharField(max_length=32, choices=sender_choices)
    # Credentials and settings, checked by the sender kind; shown only masked, encrypted at rest.
    config = EncryptedJSONField(default=dict, blank=True)
    sender_id = models.CharField(max_length=32, blank=True, help_text="The From: a number or an alphanumeric id.")
    enabled = models.BooleanField(default=True)
    # Who changed what (the audit log); the credential in `config` only as "changed".
    history = AuditedHistory(secret_keys={"config": lambda sender: sender_secret_keys(sender.kind)})

    def __str__(self) -> str:
        return f"{self.kind} for {self.connection_id}"

    def clean(self) -> None:
        validate_sender_config(self.kind, self.config)

    def build(self) -> Sender:
        return get_sender(self.kind, self.config)


class FallbackChannel(models.Model):
    """Another way to reach the recipient (e-mail, a signed webhook the product turns into a
    voice call or an app push), used by rules with the fallback action."""

    slug = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, choices=sender_choices)
    config = EncryptedJSONField(default=dict, blank=True)
    sender_id = models.CharField(max_length=254, blank=True)
    enabled = models.BooleanField(default=True)
    # The last test send from the console (retries/policy_services.py): when, by whom, whether
    # it went through, and our short summary of it (never the peer's reply).
    tested_at = models.DateTimeField(null=True, blank=True)
    tested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    test_ok = models.BooleanField(null=True, blank=True)
    test_summary = models.CharField(max_length=255, blank=True)
    history = AuditedHistory(secret_keys={"config": lambda channel: sender_secret_keys(channel.kind)})

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        validate_sender_config(self.kind, self.config)

    def build(self) -> Sender:
        return get_sender(self.kind, self.config)


def sender_secret_keys(kind: str) -> tuple[str, ...]:
    """The keys of a sender's config that hold credentials."""
    return SENDERS[kind].secret_keys if kind in SENDERS else ()


def validate_sender_config(kind: str, config: object) -> None:
    # Not tied to the `config` field: admin forms edit it as settings plus a separate credential.
    if not isinstance(config, dict):
        raise ValidationError("The sender settings must be an object.")
    try:
        validate_config(kind, config)
    except ValueError as exc:
        # The reason only: a configuration holds credentials, never echoed back.
        raise ValidationError(f"Sender settings: {exc}.") from None


class Pilot(models.Model):
    """A pilot: a few test messages through each of its connections to each of its countries,
    so the routes can be compared side by side before one is chosen (retries/pilots.py)."""

    class State(models.TextChoices):
        SENDING = "sending", pgettext_lazy("pilot state", "Sending")
        SENT = "sent", pgettext_lazy("pilot state", "All sent")
        CANCELLED = "cancelled", pgettext_lazy("pilot state", "Cancelled")

    name = models.CharField(max_length=120)
    # The flow the routes are piloted for: its countries and connections are the pilot's at most
    # (retries/pilots.py), its launch page shows the latest pilot. The pilot's own messages are
    # registered under `message_flow` so that test traffic stays out of the flow's figures.
    flow = models.ForeignKey("flows.Flow", null=True, blank=True, on_delete=models.SET_NULL, related_name="pilots")
    # The flow's name in messages when the pilot was started (a pilot of a flow since deleted, or
    # from before pilots were tied to described flows, keeps it).
    flow_slug = models.SlugField(max_length=64, blank=True)
    countries = models.JSONField(default=list)
    connections = models.ManyToManyField("receipts.Connection", related_name="+")
    messages_per_route = models.PositiveSmallIntegerField()
    # E.164 numbers that receive the test messages, each used for its own country; shown masked
    # to people who may not see numbers.
    test_numbers = models.JSONField(default=list, blank=True)
    # Through simulated connections (the demo's send API): a country without a test number gets
    # phonenumbers' example mobile number, which no real handset has.
    simulated = models.BooleanField(default=False)
    body = models.CharField(max_length=160)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SENDING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Who started, changed or cancelled which pilot (the audit log).
    history = AuditedHistory(m2m_fields=["connections"])

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def message_flow(self) -> str:
        return f"pilot-{self.pk}"


class PilotSend(models.Model):
    """One test message of a pilot: to whom, through which connection; the message once sent."""

    class Outcome(models.TextChoices):
        PENDING = "pending", pgettext_lazy("pilot send", "Pending")
        SENT = "sent", pgettext_lazy("pilot send", "Sent")
        FAILED = "failed", pgettext_lazy("pilot send", "Not sent")

    # No index of its own: pilot_send_unique_message leads with it.
    pilot = models.ForeignKey(Pilot, on_delete=models.CASCADE, related_name="sends", db_index=False)
    connection = models.ForeignKey("receipts.Connection", on_delete=models.PROTECT, related_name="+")
    country = models.CharField(max_length=2)
    recipient = models.CharField(max_length=16)
    sequence = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.PENDING)
    tries = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True)
    message = models.ForeignKey("receipts.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One row per test message: creating a pilot twice over cannot double its sends.
            models.UniqueConstraint(
                fields=["pilot", "connection", "country", "sequence"], name="pilot_send_unique_message"
            ),
        ]
        # The sending pass takes a pilot's pending sends.
        indexes = [models.Index(fields=["pilot", "outcome"], name="pilot_send_outcome_idx")]

    def __str__(self) -> str:
        return f"pilot {self.pilot_id} {self.connection_id} {self.country} #{self.sequence}"

    @property
    def idempotency_key(self) -> str:
        """The same for every try of this send: a provider that took it once sends it once."""
        return f"pilot-{self.pilot_id}-{self.connection_id}-{self.country}-{self.sequence}"
