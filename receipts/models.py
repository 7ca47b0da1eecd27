"""Connections, messages and receipts: the records the ingestion path writes."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from dlrconsole.lib.history import AuditedHistory
from dlrconsole.lib.request_id import MAX_LENGTH as REQUEST_ID_MAX_LENGTH
from dlrconsole.lib.secrets_at_rest import EncryptedJSONField
from receipts.providers.registry import get_adapter, provider_choices
from receipts.reasons import ErrorClass, reason_choices
from receipts.statuses import NO_RECEIPT, ReceiptOutcome, Status


def _validate_secrets(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise ValidationError(_("Secrets must be a list of non-empty strings."))


def _validate_networks(value: object) -> None:
    if not isinstance(value, list):
        raise ValidationError(_("Allowed addresses must be a list of IP networks."))
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            raise ValidationError(_("%(item)s is not an IP address or network."), params={"item": item}) from None


class ClassSource(models.TextChoices):
    CATALOG = "catalog", _("Error catalog")
    PROVIDER = "provider", _("Provider's own flag")


class TestMode(models.TextChoices):
    OFF = "off", _("Off: live traffic; no pilot or fallback test sends through it")
    TEST = "test", _("Test mode: pilots and fallback tests send through it, only to its test numbers")
    SIMULATOR = "simulator", _("Simulator: a simulated provider (the demo); tests go to example numbers no phone has")


# A handful of team phones per country is what a pilot needs; more is a recipient list.
MAX_TEST_NUMBERS = 20


class TestTrafficRefused(ValueError):
    """Test messages may not go through this connection (to this country); the message says why."""


def validate_test_numbers(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(number, str) for number in value):
        raise ValidationError(_("Test numbers must be a list of phone numbers."))
    if len(value) > MAX_TEST_NUMBERS:
        raise ValidationError(_("At most %(limit)s test numbers."), params={"limit": MAX_TEST_NUMBERS})
    for number in value:
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            parsed = None
        if (
            parsed is None
            or not phonenumbers.is_valid_number(parsed)
            or phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != number
        ):
            raise ValidationError(
                _("%(number)s is not a valid number in E.164 form, e.g. +33612345678."), params={"number": number[:20]}
            )
    if len(set(value)) != len(value):
        raise ValidationError(_("A test number is listed twice."))


def _region(e164: str) -> str:
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164)) or ""


class Connection(models.Model):
    """One configured account of a provider, with its own webhook URL and secrets."""

    slug = models.SlugField(max_length=64, unique=True, help_text=_("Part of the webhook URL /hooks/<slug>/."))
    provider = models.CharField(max_length=32, choices=provider_choices)
    name = models.CharField(max_length=200, blank=True)
    # Several secrets are accepted at once so a provider's key can be rotated without losing
    # receipts signed with the old one while the change propagates.
    secrets = EncryptedJSONField(default=list, validators=[_validate_secrets])
    # URL-signed schemes (Twilio) sign the URL the provider called, which differs from the one
    # Django sees behind a TLS-terminating proxy; when set, verification uses this instead.
    public_url = models.URLField(blank=True, max_length=500)
    # Provider-specific settings (a Vonage signature method, an SNS topic ARN, ...), checked by
    # the provider's adapter; see each adapter module for what it takes.
    options = models.JSONField(default=dict, blank=True)
    # Source addresses allowed to post (CIDRs); empty allows any. Mostly for providers that
    # cannot sign and publish their callback addresses.
    allowed_ips = models.JSONField(default=list, blank=True, validators=[_validate_networks])
    enabled = models.BooleanField(default=True)
    # A provider replaying a backlog must not starve the others of the database: above this
    # many authentic requests per second the webhook answers 429 and the provider sends again.
    rate_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Webhook requests per second this connection accepts (counted across all web processes); more "
            "are answered 429 with Retry-After and the provider sends them again. Empty: no limit."
        ),
    )
    # Whether pilots and fallback tests may send through it, and to whom (retries/pilots.py,
    # retries/flow_fallback.py): a live route sends their test messages to nobody.
    test_mode = models.CharField(max_length=9, choices=TestMode.choices, default=TestMode.OFF, db_default=TestMode.OFF)
    test_numbers = models.JSONField(
        default=list, blank=True, validators=[validate_test_numbers],
        help_text=_("The team's phones that receive test messages in test mode, in E.164."),
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Who changed what (the audit log); the secrets only as "changed".
    history = AuditedHistory(secret_fields=["secrets"])

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        if self.provider not in dict(provider_choices()):
            return  # the field's own choices validation reports it
        adapter = get_adapter(self.provider)
        try:
            adapter.validate_options(self.options if isinstance(self.options, dict) else {})
        except ValueError as exc:
            raise ValidationError({"options": str(exc)}) from None
        for secret in self.secrets if isinstance(self.secrets, list) else []:
            try:
                adapter.validate_secret(secret)
            except ValueError as exc:
                # The reason only: the secret itself is never echoed back.
                raise ValidationError({"secrets": str(exc)}) from None
        if self.test_mode == TestMode.TEST and not self.test_numbers:
            raise ValidationError({"test_numbers": _("Test mode needs at least one test number.")})

    def test_recipients(self, country: str) -> list[str]:
        """Where a test message to `country` may go through this connection: its test numbers
        there in test mode, an example number no phone has on a simulator; TestTrafficRefused
        with what to change otherwise."""
        if self.test_mode == TestMode.SIMULATOR:
            example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
            if example is None:
                raise TestTrafficRefused(gettext("no example number is known for %(country)s") % {"country": country})
            return [phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)]
        if self.test_mode == TestMode.TEST:
            numbers = [n for n in self.test_numbers if _region(n) == country]
            if not numbers:
                text = gettext(
                    "%(connection)s is in test mode without a test number in %(country)s: add one on its page"
                )
                raise TestTrafficRefused(text % {"connection": self.slug, "country": country})
            return numbers
        text = gettext(
            "%(connection)s carries live traffic: put it in test mode with test numbers (on its page) before "
            "sending test messages through it"
        )
        raise TestTrafficRefused(text % {"connection": self.slug})

    def secret_hints(self) -> list[str]:
        """The secrets as they may be shown: never more than their last four characters."""
        return [mask_secret(secret) for secret in self.secrets]

    def webhook_path(self) -> str:
        return f"/hooks/{self.slug}/"

    def allows_address(self, address: str) -> bool:
        if not self.allowed_ips:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(network, strict=False) for network in self.allowed_ips)


def mask_secret(secret: str) -> str:
    if len(secret) <= 8:
        return "…"
    return f"…{secret[-4:]}"


e164_validator = RegexValidator(r"^\+[1-9]\d{6,14}$", _("Enter a number in E.164 form, e.g. +33612345678."))


class Message(models.Model):
    """One submitted SMS, known by (connection, provider message id)."""

    # No index of its own: message_unique_provider_id leads with it. Every status change rewrites
    # each of the table's indexes (a status is indexed, so no update is HOT): one less to write.
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="messages", db_index=False)
    provider_message_id = models.CharField(max_length=128)
    recipient = models.CharField(max_length=16, validators=[e164_validator])
    country = models.CharField(max_length=2, blank=True, help_text=_("ISO 3166 alpha-2, from the number."))
    # Its index is the plain one in Meta: a SlugField's own adds a second for LIKE, never used.
    flow = models.SlugField(max_length=64, blank=True, db_index=False)
    client_reference = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error_code = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=48, blank=True)
    error_class = models.CharField(max_length=16, choices=ErrorClass.choices, blank=True)
    # What the catalog says, kept beside the effective class so a provider's disagreeing
    # permanence flag shows. Database defaults: the benchmark inserts rows in raw SQL.
    catalog_class = models.CharField(max_length=16, choices=ErrorClass.choices, blank=True, default="", db_default="")
    class_source = models.CharField(max_length=16, choices=ClassSource.choices, blank=True, default="", db_default="")
    submitted_at = models.DateTimeField()
    first_receipt_at = models.DateTimeField(null=True, blank=True)
    final_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # When the missing-receipt sweep reported this message as still pending past its SLA.
    no_receipt_at = models.DateTimeField(null=True, blank=True)
    # A resend points to the original message of its attempt chain; originals leave it empty.
    chain_root = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends")
    # The text, kept only to resend it (retries) and erased after DLR_MESSAGE_BODY_RETENTION
    # (retries/bodies.py); never in the API's output, the feed or logs. Only originals keep it:
    # every attempt of a chain sends the original's text.
    body = models.TextField(blank=True, max_length=1600)
    # Where the e-mail fallback channel reaches the recipient, if the product gave it.
    fallback_email = models.EmailField(max_length=254, blank=True)
    # The network the provider says the message went to (MCC/MNC or operator), from its receipts.
    network = models.CharField(max_length=64, blank=True, default="", db_default="")
    # What the message cost: the provider's reported price when a receipt carries one, else the
    # connection's price list at registration; null when neither says.
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="", db_default="")
    # Fallback sends (another channel: e-mail, a webhook) that reached the user for this
    # original message; counted by the attempt runner, summed by the rollups.
    fallbacks = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Registered for a described flow that had no "go" yet (receipts/flows): accepted, and
    # flagged on its page, in the search and in the API, as the launch checklist asks.
    flow_not_live = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The identity providers use in receipts; ingestion and registration rely on it.
            models.UniqueConstraint(fields=["connection", "provider_message_id"], name="message_unique_provider_id"),
        ]
        indexes = [
            # Support search by number, newest first.
            models.Index(fields=["recipient", "-id"], name="message_recipient_idx"),
            # The product's own reference lookups.
            models.Index(fields=["client_reference"], name="message_client_ref_idx", condition=~Q(client_reference="")),
            # Status filters and the stale-pending sweep.
            models.Index(fields=["status", "submitted_at"], name="message_status_submitted_idx"),
            # Time-range searches, dashboards, and the console's keyset pages: newest first on
            # (submitted_at, id), so a page is one backward range scan at any depth.
            models.Index(fields=["submitted_at", "id"], name="message_submitted_id_idx"),
            # The console's search box: a provider's message id pasted without its connection.
            models.Index(fields=["provider_message_id"], name="message_provider_id_idx"),
            # Filters by flow. Plain: nothing asks for a flow by prefix.
            models.Index(fields=["flow"], name="message_flow_idx"),
        ]
        # The console's capabilities, granted to roles in dlrconsole/roles.py.
        permissions = [
            ("use_console", "Use the console: overview and search"),
            ("view_timeline", "Open a message's page and timeline"),
            ("resend_message", "Resend a message"),
            ("export_messages", "Export search results as CSV"),
            ("see_full_numbers", "See full phone numbers"),
            ("view_audit_log", "Read the audit log of configuration changes"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.provider_message_id}"


class Receipt(models.Model):
    """One delivery receipt as received. Append-only: its content is never edited; only its
    link to a message (set when a parked receipt's message is registered) and its outcome
    (decided when it is applied) are written after insertion."""

    # No index of its own: receipt_unique_dedupe_key leads with it, one less index per receipt.
    # No database constraint either: PostgreSQL checks a foreign key once per inserted row, and
    # every receipt of a batch names the same connection (1,000 checks of one row, ~4 ms a
    # batch). A connection is deleted only through the ORM, where PROTECT refuses it while it
    # has receipts and receipts/connection_deletion.py closes the gap of one arriving meanwhile.
    connection = models.ForeignKey(
        Connection, on_delete=models.PROTECT, related_name="receipts", db_index=False, db_constraint=False
    )
    message = models.ForeignKey(Message, on_delete=models.PROTECT, null=True, blank=True, related_name="receipts")
    provider_message_id = models.CharField(max_length=128)
    # The provider's event id where it gives one, otherwise a hash of the fields that identify
    # the event; unique per connection so a provider's retries are stored once.
    dedupe_key = models.CharField(max_length=128)
    provider_status = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=32, blank=True)
    error_description = models.CharField(max_length=255, blank=True)
    # The error catalog's reading of the code when the receipt arrived (see receipts/errors.py).
    reason = models.CharField(max_length=48, blank=True, default="", db_default="")
    error_class = models.CharField(max_length=16, choices=ErrorClass.choices, blank=True, default="", db_default="")
    catalog_class = models.CharField(max_length=16, choices=ErrorClass.choices, blank=True, default="", db_default="")
    class_source = models.CharField(max_length=16, choices=ClassSource.choices, blank=True, default="", db_default="")
    provider_timestamp = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=ReceiptOutcome.choices)
    # What the provider said of the network and the price (receipts/providers/base.py cleans them).
    network = models.CharField(max_length=64, blank=True, default="", db_default="")
    price = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="", db_default="")
    raw_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "dedupe_key"], name="receipt_unique_dedupe_key"),
        ]
        indexes = [
            # Linking parked receipts when their message is registered.
            models.Index(
                fields=["connection", "provider_message_id"],
                name="receipt_parked_idx",
                condition=Q(message__isnull=True),
            ),
            # The console overview's receipts per minute; rows arrive in time order, so inserts
            # only ever touch the index's right edge.
            models.Index(fields=["received_at"], name="receipt_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_message_id} {self.provider_status}"


class OutboxEvent(models.Model):
    """One change the apps above must see (rules decide on it). Written in the same transaction
    as the change, so a change is never lost and never seen without having happened; dispatched
    to Celery after commit and handed to the registered consumers (receipts/outbox.py)."""

    class Kind(models.TextChoices):
        STATUS_CHANGED = "status_changed", "Status changed"
        # Still pending past its flow's receipt SLA (receipts/sweeps.py).
        NO_RECEIPT = NO_RECEIPT, "No receipt"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="outbox_events")
    receipt = models.ForeignKey(Receipt, on_delete=models.SET_NULL, null=True, blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16)
    created_at = models.DateTimeField()
    # Stamped in the writing transaction (the event is handed to the publisher at commit),
    # cleared when the publish fails. Empty: to be published by the sweeper; stamped long ago
    # and still unprocessed: lost in flight, published again (receipts/outbox.py).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_count = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # A consumer that raised on this event (a poison event) rolled back what it wrote; the event
    # is tried again at `retry_at`, after a backoff, and after too many failures parked as failed
    # (`failed_at`): no longer tried, listed in the admin, counted (receipts/outbox.py).
    # Defaults in the database too: the store's hot-path INSERT names only the columns it sets.
    failures = models.PositiveIntegerField(default=0, db_default=0)
    last_error = models.CharField(
        max_length=255, blank=True, default="", db_default="", help_text="The exception's class and masked message."
    )
    retry_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # The id of the request (or task) that wrote the event, so that its consumers log under it
    # however the event reaches them: the publisher's first try, or the sweeper's much later.
    # Empty when nothing was being served (a management command).
    request_id = models.CharField(max_length=REQUEST_ID_MAX_LENGTH, blank=True, default="", db_default="")

    class Meta:
        indexes = [
            # The sweeper's scan: only rows still to process (neither processed nor parked), by
            # when they were handed to the broker.
            models.Index(
                fields=["dispatched_at"],
                name="outbox_pending_idx",
                condition=Q(processed_at__isnull=True, failed_at__isnull=True),
            ),
            # The admin's and monitoring's count of parked events.
            models.Index(fields=["failed_at"], name="outbox_failed_idx", condition=Q(failed_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id} → {self.status}"


class ErrorCodeOverride(models.Model):
    """An admin's correction of the shipped error catalog for one provider code. Every change
    is kept in its history (who, when, what)."""

    provider = models.CharField(max_length=32, choices=provider_choices)
    # Stored as matched: without leading zeros, see `normalize_code`.
    code = models.CharField(max_length=32)
    reason = models.CharField(max_length=48, choices=reason_choices)
    error_class = models.CharField(
        max_length=16,
        choices=ErrorClass.choices,
        blank=True,
        help_text=_("Leave empty to use the reason's usual class."),
    )
    note = models.TextField(blank=True, help_text=_("Why the shipped mapping is wrong for us; a source if any."))
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            # One override per code; classification reads them all into a per-process cache.
            models.UniqueConstraint(fields=["provider", "code"], name="error_override_unique_code"),
        ]
        ordering = ["provider", "code"]

    def __str__(self) -> str:
        return f"{self.provider} {self.code} → {self.reason}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.code = normalize_code(self.code)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        # Before the uniqueness check, so "001" is found to be the existing "1".
        self.code = normalize_code(self.code)


DECIMAL_CODE = re.compile(r"[0-9]+")
HEX_CODE = re.compile(r"0[xX][0-9a-fA-F]+")


def normalize_code(code: str) -> str:
    """The form error codes are matched in: numbers without leading zeros ("001" == "1"), SMPP
    command statuses as lower-case hex ("0x0000000B" == "0xb"), names upper-cased."""
    code = code.strip()
    if DECIMAL_CODE.fullmatch(code):  # not str.isdigit(): it takes "¹", which int() refuses
        return str(int(code))
    if HEX_CODE.fullmatch(code):
        return hex(int(code, 16))
    return code.upper()


class RollupPending(models.Model):
    """Messages whose contribution to the rollups may have changed since the last pass: written
    in the same statement that moves a message (receipts/store.py), consumed and deleted by the
    rollup pass (receipts/rollups/maintain.py) in its own transaction, so a change is counted
    exactly once even if a pass fails halfway. No foreign key: the hot path must not take a
    share lock on the message for it, and a pass skips ids whose message is gone."""

    message_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"pending {self.message_id}"


def validate_region(value: str) -> None:
    if value and value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(_("%(value)s is not an ISO 3166 country code."), params={"value": value})


class ConnectionPrice(models.Model):
    """What a message costs on a connection, per destination country, for providers whose
    receipts carry no price. A provider's own price in a receipt wins over this list."""

    # No index of its own: price_unique_connection_country leads with it.
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="prices", db_index=False)
    country = models.CharField(
        max_length=2,
        blank=True,
        validators=[validate_region],
        help_text=_("ISO 3166 alpha-2; empty: any other country."),
    )
    price = models.DecimalField(
        max_digits=12, decimal_places=6, validators=[MinValueValidator(0), MaxValueValidator(999_999)]
    )
    currency = models.CharField(
        max_length=3, validators=[RegexValidator(r"^[A-Za-z]{3}$", _("An ISO 4217 code, e.g. EUR."))]
    )
    history = AuditedHistory()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "country"], name="price_unique_connection_country"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.country or '*'} {self.price} {self.currency}"

    def clean(self) -> None:
        self.country = self.country.strip().upper()
        self.currency = self.currency.strip().upper()


class WebhookRefusal(models.Model):
    """Webhooks refused on a connection in one minute, by reason (receipts/refusals.py): a
    count, never the request (a refused request stores nothing of itself)."""

    class Reason(models.TextChoices):
        SIGNATURE = "signature", _("Signature or token wrong (401)")
        ADDRESS = "address", _("Source address not allowed (403)")
        MALFORMED = "malformed", _("Not a receipt of this provider (400)")
        RATE_LIMITED = "rate_limited", _("Over the connection's rate limit (429)")

    # No index of its own: refusal_unique_minute leads with it.
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+", db_index=False)
    minute = models.DateTimeField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # The counting upsert's conflict target; also serves a connection's reads.
            models.UniqueConstraint(fields=["connection", "minute", "reason"], name="refusal_unique_minute"),
        ]
        indexes = [
            # The alert round's and /metrics' window over every connection, and the prune.
            models.Index(fields=["minute"], name="refusal_minute_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.minute:%Y-%m-%d %H:%M} {self.reason} x{self.count}"


class Conversion(models.Model):
    """What the product saw the recipient do with a message (an OTP entered, a link opened),
    reported through the API: the one proof that a "delivered" reached a person. Read by the
    route trust score (receipts/honesty.py); one per message and kind, so a report sent twice
    counts once."""

    class Kind(models.TextChoices):
        OTP_ENTERED = "otp_entered", _("Code entered")
        LINK_OPENED = "link_opened", _("Link opened")
        REPLIED = "replied", _("Replied")
        ACTION_COMPLETED = "action_completed", _("Action completed")

    # No index of its own: conversion_unique_message_kind leads with it.
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="conversions", db_index=False)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    # When the product saw it (its clock), and when we were told (ours).
    converted_at = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Idempotent reports: the API answers the first one when the same kind comes again.
            models.UniqueConstraint(fields=["message", "kind"], name="conversion_unique_message_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} {self.kind}"
