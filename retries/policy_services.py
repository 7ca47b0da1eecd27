"""Writes of the policy editor: a rule with its conditions and steps saved at once, rules
reordered, enabled or disabled; fallback channels saved with a write-only credential and tested
through their real sender. Every change goes through the models' history, so the audit log
records it with the person who made it (the request's user)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Max

from receipts.models import Connection
from receipts.phones import InvalidNumber, parse_number
from retries.models import FallbackChannel, Rule, Step
from retries.senders.base import SendError
from retries.senders.registry import SENDERS

TEST_BODY = "Test message from DLR Console: this channel can reach you."
TEST_SUBJECT = "DLR Console: test of a fallback channel"


@dataclass(frozen=True)
class StepDraft:
    """One step as the editor sends it; `id` keeps an existing step (and the attempts chains in
    flight have counted against it)."""

    action: str
    count: int = 1
    delays: tuple[int, ...] = ()
    target_connection_id: int | None = None
    fallback_channel_id: int | None = None
    id: int | None = None


@dataclass(frozen=True)
class RuleDraft:
    name: str
    enabled: bool
    deadline_seconds: int | None
    flows: list[str]
    countries: list[str]
    statuses: list[str]
    error_classes: list[str]
    reasons: list[str]
    connection_ids: list[int]
    steps: list[StepDraft]


def rule_from_draft(draft: RuleDraft, *, base: Rule | None = None) -> Rule:
    """An unsaved Rule carrying the draft (for warnings, the tester and the dry run): its
    connections and steps carried (Rule.carry), not read from the database."""
    rule = Rule(
        pk=base.pk if base else None, name=draft.name, enabled=draft.enabled,
        position=base.position if base else 10**6, deadline_seconds=draft.deadline_seconds,
        flows=draft.flows, countries=draft.countries, statuses=draft.statuses,
        error_classes=draft.error_classes, reasons=draft.reasons,
    )  # fmt: skip
    channels = FallbackChannel.objects.in_bulk([s.fallback_channel_id for s in draft.steps if s.fallback_channel_id])
    connections = Connection.objects.in_bulk([s.target_connection_id for s in draft.steps if s.target_connection_id])
    steps = [
        Step(
            pk=s.id,
            position=number,
            action=s.action,
            count=s.count,
            delays=list(s.delays),
            target_connection=connections.get(s.target_connection_id or 0),
            fallback_channel=channels.get(s.fallback_channel_id or 0),
        )
        for number, s in enumerate(draft.steps, start=1)
    ]
    rule.carry(draft.connection_ids, steps)
    return rule


@transaction.atomic
def rule_save(*, draft: RuleDraft, rule: Rule | None = None) -> Rule:
    """Create or update a rule with its conditions and escalation; steps kept by id, the others
    removed, positions rewritten in the draft's order. Nothing is stored if anything is refused."""
    if rule is None:
        last = Rule.objects.aggregate(last=Max("position"))["last"] or 0
        rule = Rule(position=last + 1)
    else:
        rule = Rule.objects.select_for_update().get(pk=rule.pk)
    for name in ("name", "enabled", "deadline_seconds", "flows", "countries", "statuses", "error_classes", "reasons"):
        setattr(rule, name, getattr(draft, name))
    rule.full_clean()
    rule.save()
    rule.connections.set(Connection.objects.filter(pk__in=draft.connection_ids))
    kept = {s.id for s in draft.steps if s.id}
    rule.steps.exclude(pk__in=kept).delete()
    existing = rule.steps.in_bulk(list(kept))
    for number, step_draft in enumerate(draft.steps, start=1):
        step = existing.get(step_draft.id or 0) or Step(rule=rule)
        step.position, step.action, step.count = number, step_draft.action, step_draft.count
        step.delays = list(step_draft.delays)
        step.target_connection_id = step_draft.target_connection_id if step_draft.action == "retry_other" else None
        step.fallback_channel_id = step_draft.fallback_channel_id if step_draft.action == "fallback" else None
        step.full_clean(exclude=["rule"])
        step.save()
    return rule


@transaction.atomic
def rule_move(*, rule: Rule, offset: int) -> None:
    """Move `rule` up (-1) or down (+1) in the order rules are tried; every position rewritten
    1..n in one transaction, the rows locked so two admins reordering at once do not interleave."""
    rules = list(Rule.objects.select_for_update().order_by("position", "id"))
    index = next(i for i, r in enumerate(rules) if r.pk == rule.pk)
    target = min(max(index + offset, 0), len(rules) - 1)
    rules.insert(target, rules.pop(index))
    for position, each in enumerate(rules, start=1):
        if each.position != position:
            each.position = position
            each.save(update_fields=["position"])


def rule_set_enabled(*, rule: Rule, enabled: bool) -> None:
    rule.enabled = enabled
    rule.save(update_fields=["enabled"])


@transaction.atomic
def rule_delete(*, rule: Rule) -> None:
    rule.delete()


def secret_key(kind: str) -> str:
    keys = SENDERS[kind].secret_keys if kind in SENDERS else ()
    return keys[0] if keys else ""


def channel_save(
    *,
    channel: FallbackChannel | None,
    slug: str,
    kind: str,
    sender_id: str,
    enabled: bool,
    settings: Mapping[str, Any],
    secret: str,
) -> FallbackChannel:
    """Create or update a channel. The credential is write-only: a blank one keeps the stored
    value when the kind is unchanged. Raises ValidationError (nothing stored) on refusal."""
    channel = channel or FallbackChannel()
    before = (channel.kind, dict(channel.config or {}))
    key = secret_key(kind)
    config = {name: value for name, value in settings.items() if value not in (None, "")}
    if key:
        stored = (channel.config or {}).get(key) if channel.kind == kind else None
        if secret or stored:
            config[key] = secret or stored
    channel.slug, channel.kind, channel.sender_id, channel.enabled = slug, kind, sender_id, enabled
    channel.config = config
    if (kind, config) != before:
        # A changed configuration has not been tested yet.
        channel.tested_at, channel.tested_by, channel.test_ok, channel.test_summary = None, None, None, ""
    channel.full_clean()
    channel.save()
    return channel


def check_test_address(kind: str, to: str) -> str:
    """The address a test goes to, as the channel's kind needs it; ValidationError says why not."""
    to = to.strip()
    if kind == "email":
        validate_email(to)
        return to
    try:
        return parse_number(to).e164
    except InvalidNumber as exc:
        raise ValidationError(f"{exc}: write the number in international form, e.g. +33612345678") from None


def channel_test_send(*, channel: FallbackChannel, to: str, user: Any, now: datetime) -> FallbackChannel:
    """Send a test through the channel's real sender and keep the outcome on the channel: when,
    who, ok or failed, and our summary (the sender's reason or result; never the peer's reply)."""
    address = check_test_address(channel.kind, to)
    try:
        sender = channel.build()
        result = sender.send(
            to=address, body=TEST_BODY, sender_id=channel.sender_id, options={"subject": TEST_SUBJECT},
            idempotency_key=f"channel-test-{channel.pk}-{uuid.uuid4().hex[:12]}",
        )  # fmt: skip
        ok, text = True, f"sent: {result.response_summary}"
    except SendError as exc:
        ok, text = False, f"failed: {exc.reason}"
    except ValueError as exc:
        ok, text = False, f"failed: the settings are invalid ({exc})"
    channel.tested_at, channel.tested_by, channel.test_ok, channel.test_summary = now, user, ok, text[:255]
    channel.save(update_fields=["tested_at", "tested_by", "test_ok", "test_summary"])
    return channel
