"""Erasing a recipient's number for a data-protection request: every message to it, and what
carries the number beside them, is anonymized in one transaction, and the request is recorded
and audited without the number (its masked form and a keyed hash only).

Anonymized rather than deleted: the messages keep their connection, country, statuses and
times, so the rollups and every figure stay right, and nothing identifies the person any more:
the number, the text, the fallback address, the receipts' raw payloads and headers are emptied;
the number is cut out of what quotes it (decisions' and attempts' texts, the product feed's
payloads and errors, per-message alerts, and what people typed: alert comments and launch
rationales, in any spelling of the number); it leaves the pilots' and connections' test numbers
(and their history); resends still
waiting are cancelled.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

import phonenumbers
from django.db import models, transaction
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.crypto import salted_hmac

from alerts.models import Alert, AlertEvent, NotificationAttempt
from dlrconsole.audit.models import AuditEntry, ErasureRequest
from dlrconsole.audit.services import audit_action
from receipts.flows.models import LaunchDecision
from receipts.models import Connection, Message, Receipt
from receipts.phones import mask_number
from retries.feed.models import FeedAttempt, FeedDelivery, FeedEvent
from retries.models import Attempt, Decision, Pilot

ERASED = "[erased]"
CANCELLED_DETAIL = "Not sent: the recipient's number was erased (data-protection request)."


def number_hash(e164: str) -> str:
    """The keyed hash an erasure is recorded under: the same number gives the same hash for as
    long as SECRET_KEY stays; nobody without the key can test numbers against it."""
    return salted_hmac("dlrconsole.erasure.number", e164, algorithm="sha256").hexdigest()


# What people and forms put between a number's digits: spaces (also URL-encoded, or `+` in a
# form body), dots, dashes, slashes and brackets ("+41 (0)79 302-67-27").
_SEPARATORS = r"(?:[\s.\-/()]|%20|\+)*"


class Scrubber:
    """Cuts every spelling of one number out of text and JSON: E.164, without the +, with 00
    or URL-encoded, and the national form, as providers write it (receipts/phones.py), and as
    people type it in comments and rationales: digits grouped by spaces, dots, dashes or
    brackets, with or without the country code and the trunk 0."""

    def __init__(self, e164: str) -> None:
        parsed = phonenumbers.parse(e164, None)
        national = str(parsed.national_number)
        if parsed.italian_leading_zero:
            national = "0" * (parsed.number_of_leading_zeros or 1) + national
        spaced = _SEPARATORS.join(re.escape(digit) for digit in national)
        prefix = rf"(?:(?:\+|%2[Bb]|00){_SEPARATORS})?(?:{parsed.country_code}{_SEPARATORS})?(?:\(?0\)?{_SEPARATORS})?"
        # Any digits right before the national number went with it (a country code we did not
        # foresee): cut them too rather than leave part of a number behind.
        self.pattern = re.compile(rf"(?:\+|%2[Bb]|00)?\d*{re.escape(national)}|{prefix}{spaced}")
        self.digits = e164.lstrip("+")

    def text(self, value: str) -> str:
        return self.pattern.sub(ERASED, value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.json(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [self.json(inner) for inner in value]
        return value


def number_erasure_preview(e164: str) -> dict[str, int]:
    """What an erasure would find, before anyone confirms it: the messages to the number and
    their receipts (one indexed lookup each)."""
    messages = Message.objects.filter(recipient=e164)
    return {
        "messages": messages.count(),
        "receipts": Receipt.objects.filter(message__in=messages.values("pk")).count(),
    }


def number_erase(*, e164: str, user: Any = None, now: datetime | None = None) -> ErasureRequest:
    """Erase the number everywhere, record and audit the request; rows touched per table."""
    now = now or timezone.now()
    with transaction.atomic():
        counts = _erase(e164, Scrubber(e164))
        person = user if getattr(user, "pk", None) else None
        request = ErasureRequest.objects.create(
            at=now,
            user=person,
            username=person.get_username() if person else "",
            masked_number=mask_number(e164),
            number_hash=number_hash(e164),
            counts=counts,
        )
        changes = [{"field": "number", "label": "Number erased", "old": "", "new": request.masked_number}]
        changes += [{"field": table, "label": table, "old": "", "new": str(n)} for table, n in counts.items()]
        audit_action(user=user, instance=request, changes=changes, action=AuditEntry.Action.CREATED, at=now)
    return request


def _erase(e164: str, scrub: Scrubber) -> dict[str, int]:
    counts: Counter[str] = Counter()
    ids = list(Message.objects.filter(recipient=e164).values_list("pk", flat=True))
    linked = Receipt.objects.filter(message_id__in=ids)
    # A request's receipts share their arrival time: a batch that reported this number beside
    # others may carry it in their raw payloads too (providers that keep one body per batch).
    arrivals = set(linked.values_list("received_at", flat=True))
    beside = Receipt.objects.filter(received_at__in=arrivals, raw_body__contains=scrub.digits).exclude(
        message_id__in=ids
    )
    # Receipts that never found their message: only their payload knows whose they are. The
    # parked receipts' own index keeps this off the whole table.
    parked = Receipt.objects.filter(message__isnull=True, raw_body__contains=scrub.digits)
    for name, receipts in (("receipts", linked), ("receipts of the same batches", beside), ("parked receipts", parked)):
        counts[name] = receipts.update(raw_body="", headers={}, error_description="")
    counts["messages"] = Message.objects.filter(pk__in=ids).update(recipient="", body="", fallback_email="")
    counts["resends cancelled"] = Attempt.objects.filter(
        chain_root_id__in=ids, outcome=Attempt.Outcome.SCHEDULED
    ).update(outcome=Attempt.Outcome.CANCELLED, detail=CANCELLED_DETAIL, finished_at=timezone.now())
    chain = Attempt.objects.filter(models.Q(chain_root_id__in=ids) | models.Q(resend_id__in=ids))
    counts["attempts"] = _scrub_rows(chain, scrub, "detail", "response_summary")
    counts["decisions"] = _scrub_rows(Decision.objects.filter(message_id__in=ids), scrub, "why")
    counts["feed events"] = _scrub_rows(FeedEvent.objects.filter(message_id__in=ids), scrub, json=("payload",))
    deliveries = FeedDelivery.objects.filter(message_id__in=ids)
    counts["feed deliveries"] = _scrub_rows(deliveries, scrub, "last_error")
    counts["feed attempts"] = _scrub_rows(FeedAttempt.objects.filter(delivery__in=deliveries), scrub, "error")
    alerts = Alert.objects.filter(message_id__in=ids)
    counts["alerts"] = _scrub_rows(alerts, scrub, "title")
    counts["alert events"] = _scrub_rows(AlertEvent.objects.filter(alert__in=alerts), scrub, "text")
    counts["alert notification tries"] = _scrub_rows(
        NotificationAttempt.objects.filter(notification__alert__in=alerts), scrub, "error"
    )
    # What people typed about any alert or launch may quote the number, in any spelling.
    comments = AlertEvent.objects.filter(kind=AlertEvent.Kind.COMMENTED).exclude(alert__in=alerts)
    counts["alert comments"] = _scrub_quoting(comments, scrub, "text")
    counts["launch decisions"] = _scrub_quoting(LaunchDecision.objects.all(), scrub, "rationale")
    counts["pilots' test numbers"] = _drop_test_number(Pilot, e164)
    counts["pilots' history"] = _drop_test_number(Pilot.history.model, e164)
    counts["connections' test numbers"] = _drop_test_number(Connection, e164)
    counts["connections' history"] = _drop_test_number(Connection.history.model, e164)
    # The audit log keeps the changes people made, rationales and test numbers included.
    counts["audit log entries"] = _scrub_quoting(AuditEntry.objects.all(), scrub, "changes", json=True)
    return {name: number for name, number in counts.items() if number}


def _scrub_quoting(rows: models.QuerySet[Any], scrub: Scrubber, field: str, *, json: bool = False) -> int:
    """Cut the number out of a free-text (or JSON) field wherever it appears; how many rows
    quoted it. Any row may: the database finds them by the scrubber's own pattern (one scan of
    a small table: comments, rationales, the audit log), and only they are written."""
    as_text = Cast(field, models.TextField()) if json else models.F(field)
    changed = 0
    quoting = rows.annotate(erasure_text=as_text).filter(erasure_text__regex=scrub.pattern.pattern)
    for pk, value in quoting.values_list("pk", field).iterator(chunk_size=500):
        scrubbed = scrub.json(value) if json else scrub.text(value)
        if scrubbed != value:
            rows.model._default_manager.filter(pk=pk).update(**{field: scrubbed})
            changed += 1
    return changed


def _drop_test_number(model: type[models.Model], e164: str) -> int:
    """Test numbers are people's phones too: the erased one leaves the lists."""
    changed = 0
    for pk, numbers in model._default_manager.values_list("pk", "test_numbers").iterator(chunk_size=500):
        if e164 in numbers:
            kept = [number for number in numbers if number != e164]
            model._default_manager.filter(pk=pk).update(test_numbers=kept)
            changed += 1
    return changed


def _scrub_rows(rows: models.QuerySet[Any], scrub: Scrubber, *texts: str, json: tuple[str, ...] = ()) -> int:
    """Cut the number out of these rows' text and JSON fields; how many rows there were. A
    number has a handful of messages: the rows are read and written one by one."""
    count = 0
    for row in rows.only("pk", *texts, *json):
        values = {name: scrub.text(getattr(row, name)) for name in texts}
        values |= {name: scrub.json(getattr(row, name)) for name in json}
        type(row)._default_manager.filter(pk=row.pk).update(**values)
        count += 1
    return count
