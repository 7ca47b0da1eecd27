""" "Test the fallback": a flow's escalation played end to end on one test message, through the
real path (registration, the missing-receipt event, the rules' decisions, the attempt runner
and its senders) with time compressed: each attempt runs as soon as it is scheduled, and
every SMS it sends is taken to have had no receipt either, so the escalation goes on to its
fallback. Only through connections in test mode (to their test numbers) or simulated ones
(receipts.models.Connection.test_recipients): a route carrying live traffic is refused. What
was sent, what came back and when is kept on the flow (receipts.flows.models.FallbackTest) as
the launch's evidence.

Bounded: at most MAX_ROUNDS attempts; a test never waits on a retry's delay."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy

from receipts import store
from receipts.errors import code_for_reason
from receipts.flows.models import FallbackTest, Flow
from receipts.ingestion import ingest
from receipts.models import Connection, Message, OutboxEvent, TestTrafficRefused
from receipts.outbox import outbox_process
from receipts.phones import parse_number
from receipts.providers.base import ReceiptEvent, WebhookRequest
from receipts.services import MessageRegistration, message_register
from receipts.statuses import NO_RECEIPT, Status
from retries.attempts import attempt_execute, attempt_lease
from retries.models import Attempt, Decision
from retries.policy_tester import first_rule, probe_message

MAX_ROUNDS = 12
# What the test's SMS meet: a temporary failure (the readiness's policy probe, an absent
# subscriber in the provider's own code), or no receipt at all.
FAILURE, NO_RECEIPT_TRIGGER = "failure", "no_receipt"
TRIGGERS = {
    FAILURE: gettext_lazy("A temporary failure (absent subscriber)"),
    NO_RECEIPT_TRIGGER: gettext_lazy("No receipt at all"),
}
PROBE_REASON = "absent_subscriber"
TEST_BODY = "Fallback test for {name}: no action needed."


class FallbackTestRefused(ValueError):
    """The flow cannot be tested as it stands; the reason says what to set."""


def _test_recipient(flow: Flow, country: str, connection: Connection, trigger: str) -> str:
    """Whom the test's SMS go to: the route's first test number (or, on a simulator, a number no
    phone has); refused when the route, or a connection the escalation resends through, carries
    live traffic, so that a test never texts a real customer."""
    try:
        recipient = connection.test_recipients(country)[0]
        status = NO_RECEIPT if trigger == NO_RECEIPT_TRIGGER else Status.UNDELIVERED
        probe = probe_message(
            flow=flow.slug, country=country, connection=connection, status=status, reason=PROBE_REASON
        )
        rule = first_rule(probe, status)
        for step in rule.step_list() if rule else []:
            if step.target_connection is not None:
                step.target_connection.test_recipients(country)
    except TestTrafficRefused as exc:
        raise FallbackTestRefused(str(exc)) from None
    return recipient


def flow_fallback_test_run(
    *, flow: Flow, country: str, connection: Connection, user: Any, fallback_email: str = "", trigger: str = FAILURE
) -> FallbackTest:
    """Run the test on one route of the flow and keep its evidence; never raises for what the
    escalation does (a failed send is evidence), only for a route the flow does not have."""
    if trigger not in TRIGGERS:
        raise FallbackTestRefused(f"unknown trigger {trigger!r}")
    if country not in flow.countries:
        raise FallbackTestRefused(f"{country} is not one of the flow's countries")
    if not flow.connections.filter(pk=connection.pk).exists():
        raise FallbackTestRefused(f"{connection.slug} is not one of the flow's connections")
    recipient = _test_recipient(flow, country, connection, trigger)
    started = timezone.now()
    evidence = _Evidence()
    message, _created = message_register(
        MessageRegistration(
            connection=connection, provider_message_id=f"fallback-test-{uuid.uuid4().hex[:20]}",
            recipient=parse_number(recipient), flow=flow.slug, client_reference="fallback-test",
            body=TEST_BODY.format(name=flow.name)[:1600], fallback_email=fallback_email,
        )
    )  # fmt: skip
    evidence.add("sent", f"Test message registered on {connection.slug} to a {country} test number")
    reached = _play(message, evidence, trigger)
    test = FallbackTest.objects.create(
        flow=flow, country=country, connection=connection, started_at=started, finished_at=timezone.now(),
        run_by=user if getattr(user, "pk", None) else None,
        outcome=FallbackTest.Outcome.PASSED if reached else FallbackTest.Outcome.FAILED,
        summary=_summary(reached, evidence), evidence=evidence.in_order(), message=message,
    )  # fmt: skip
    return test


class _Evidence:
    def __init__(self) -> None:
        self.entries: list[dict[str, str]] = []
        self.fallback_reached = False
        self.decisions_seen: set[int] = set()

    def in_order(self) -> list[dict[str, str]]:
        # Stable: entries of the same instant keep the order they happened in.
        return sorted(self.entries, key=lambda entry: entry["at"])

    def add(self, kind: str, text: str, at: datetime | None = None) -> None:
        self.entries.append({"at": (at or timezone.now()).isoformat(), "kind": kind, "text": text[:500]})


def _play(root: Message, evidence: _Evidence, trigger: str) -> bool:
    """Drive the chain: fail the newest SMS, let the rules decide, run what they scheduled at
    once; until a fallback channel reaches the user or nothing is left to do."""
    pending = [root]
    for _round in range(MAX_ROUNDS):
        if pending:
            (_report_missing if trigger == NO_RECEIPT_TRIGGER else _fail)(pending.pop(), evidence)
        _record_decisions(root, evidence)
        attempt = Attempt.objects.filter(chain_root=root, outcome=Attempt.Outcome.SCHEDULED).order_by("id").first()
        if attempt is None:
            break
        resend = _run(attempt, evidence)
        if resend is not None:
            pending.append(resend)
        if evidence.fallback_reached:
            _record_decisions(root, evidence)
            return True
    else:
        evidence.add("note", f"Stopped after {MAX_ROUNDS} attempts")
    return False


def _report_missing(message: Message, evidence: _Evidence) -> None:
    message.refresh_from_db(fields=["status"])
    now = timezone.now()
    for event_id in store.messages_report_missing([(message.pk, message.status)], now=now):
        outbox_process(event_id, now=now)
    evidence.add("received", f"No receipt for {message.provider_message_id} (taken as missing, time compressed)", now)


def _fail(message: Message, evidence: _Evidence) -> None:
    """An undelivered receipt through the ingestion path, as the provider would post it."""
    connection = message.connection
    code = code_for_reason(connection.provider, PROBE_REASON)
    event = ReceiptEvent(
        provider_message_id=message.provider_message_id, provider_status="undelivered", status=Status.UNDELIVERED,
        error_code=code, permanent=None if code else False, event_id=f"fallback-test:{message.provider_message_id}",
    )  # fmt: skip
    request = WebhookRequest(
        method="POST", url=f"https://fallback-test{connection.webhook_path()}", headers={}, body=b""
    )
    now = timezone.now()
    ingest(connection=connection, request=request, events=[event], headers={})
    for event_id in OutboxEvent.objects.filter(message=message, processed_at__isnull=True).values_list("pk", flat=True):
        outbox_process(event_id)
    what = f"error {code}" if code else "a temporary failure"
    evidence.add("received", f"Undelivered receipt for {message.provider_message_id}: {what} (test)", now)


def _record_decisions(root: Message, evidence: _Evidence) -> None:
    decisions = Decision.objects.filter(message__in=[root.pk, *root.resends.values_list("pk", flat=True)])
    for decision in decisions.exclude(pk__in=evidence.decisions_seen).select_related("rule").order_by("id"):
        evidence.decisions_seen.add(decision.pk)
        rule = f"rule “{decision.rule.name}”" if decision.rule else "no rule"
        evidence.add("decided", f"{rule}: {decision.get_action_display()} — {decision.why}", decision.created_at)


def _run(attempt: Attempt, evidence: _Evidence) -> Message | None:
    now = timezone.now()
    # The test does not wait out the step's delay: the attempt is claimed as the runner would.
    claimed = Attempt.objects.filter(pk=attempt.pk, outcome=Attempt.Outcome.SCHEDULED).update(
        outcome=Attempt.Outcome.RUNNING, due_at=now + attempt_lease(), tries=F("tries") + 1
    )
    if claimed:
        attempt_execute(attempt.pk)
    attempt.refresh_from_db()
    route = attempt.channel or attempt.connection
    through = route.slug if route is not None else "?"
    what = "fallback" if attempt.channel is not None else "resend"
    answer = attempt.response_summary or attempt.detail or attempt.get_outcome_display()
    evidence.add("sent", f"Attempt {attempt.number}: {what} through {through}: {attempt.get_outcome_display()}", now)
    evidence.add("received", f"Answer: {answer}", attempt.finished_at)
    if attempt.outcome == Attempt.Outcome.SUCCEEDED and attempt.channel is not None:
        evidence.fallback_reached = True
    return attempt.resend if attempt.outcome == Attempt.Outcome.SUCCEEDED else None


def _summary(reached: bool, evidence: _Evidence) -> str:
    attempts = sum(1 for entry in evidence.entries if entry["text"].startswith("Attempt "))
    if reached:
        return f"The fallback reached the user after {attempts} attempt(s)."
    if not attempts:
        return "No rule scheduled anything for a missing receipt of this flow on this route."
    return f"The escalation ended after {attempts} attempt(s) without a fallback reaching the user."
