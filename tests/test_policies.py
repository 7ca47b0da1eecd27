"""The policy editor's logic in retries: shadow detection, reordering, the tester's plan, the
dry run's counts, and the channel test send against a real local HTTP server."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from receipts.rollups import rebuild
from receipts.statuses import NO_RECEIPT, Status
from retries.models import FallbackChannel, Rule
from retries.policy_services import RuleDraft, StepDraft, channel_save, rule_from_draft, rule_move, rule_save
from retries.policy_simulation import draft_rule_set, dry_run
from retries.policy_tester import describe_steps, probe_message, which_rule
from retries.policy_vocabulary import (
    country_choices,
    country_choices_first,
    format_durations,
    normalize_country,
    parse_durations,
    recent_countries,
)
from retries.policy_warnings import rules_warnings
from tests.factories import ConnectionFactory, MessageFactory, rule_with_steps

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_shipped_rules() -> None:
    """Each test builds its own rule set, without the rules a fresh install ships."""
    Rule.objects.all().delete()


def ordered() -> list[Rule]:
    return list(Rule.objects.prefetch_related("connections", "steps__fallback_channel").order_by("position", "id"))


def test_durations_are_read_as_written_and_written_back() -> None:
    assert parse_durations("30s, 2m, 1h, 45") == [30, 120, 3600, 45]
    assert format_durations([30, 120, 3600]) == "30s, 2m, 1h"
    with pytest.raises(ValueError, match="is not a duration"):
        parse_durations("soon")


def test_countries_are_normalized_and_unknown_ones_refused() -> None:
    assert normalize_country(" fr ") == "FR"
    with pytest.raises(ValueError, match="unknown country “XX”"):
        normalize_country("XX")


def test_countries_of_recent_traffic_come_first_most_frequent_first() -> None:
    MessageFactory.create_batch(2, country="BE")
    MessageFactory(country="DE")
    MessageFactory(country="ES", submitted_at=timezone.now() - timedelta(days=30))
    rebuild.rebuild()  # the editor reads the day rollups, not the messages
    assert recent_countries() == ["BE", "DE"]
    codes = [choice.value for choice in country_choices_first(["IT", *recent_countries()])]
    assert codes[:3] == ["IT", "BE", "DE"]
    assert len(codes) == len(set(codes)) == len(country_choices())
    assert next(c.label for c in country_choices() if c.value == "FR") == "France (FR, +33)"


def test_a_narrower_rule_after_a_wider_one_is_flagged_as_shadowed() -> None:
    rule_with_steps("All temporary", {"action": "retry_same"}, position=1, error_classes=["temporary"])
    rule_with_steps("FR OTP", {"action": "retry_same"}, position=2, flows=["login-otp"], countries=["FR"],
                    error_classes=["temporary"])  # fmt: skip
    rule_with_steps("Permanent", {"action": "notify"}, position=3, error_classes=["permanent"])
    rules = ordered()
    warnings = rules_warnings(rules)
    texts = {rule.name: [w.text for w in warnings[rule.pk]] for rule in rules}
    assert texts["FR OTP"] == ["never matches: rule “All temporary” is tried first and takes all its messages"]
    assert texts["All temporary"] == []
    assert texts["Permanent"] == []


def test_a_disabled_earlier_rule_shadows_nothing() -> None:
    wide = rule_with_steps("Any", {"action": "notify"}, position=1)
    wide.enabled = False
    wide.save()
    rule_with_steps("FR", {"action": "notify"}, position=2, countries=["FR"])
    assert all(not found for found in rules_warnings(ordered()).values())


def test_steps_without_target_and_untested_channels_are_flagged() -> None:
    channel = FallbackChannel.objects.create(slug="mail", kind="email", config={"from_email": "otp@example.com"})
    rule_with_steps("Escalate", {"action": "retry_other"}, {"action": "fallback", "fallback_channel": channel})
    texts = [w.text for w in rules_warnings(ordered())[Rule.objects.get().pk]]
    assert texts[0] == "step 1: no other connection configured on the step: it will always be skipped"
    assert "step 2: channel mail was never tested" in texts


def test_fallback_by_email_in_a_flow_that_rarely_carries_an_address_is_flagged() -> None:
    channel = FallbackChannel.objects.create(slug="mail", kind="email", config={})
    MessageFactory.create_batch(3, flow="login-otp")
    MessageFactory(flow="login-otp", fallback_email="someone@example.com")
    rule_with_steps("OTP", {"action": "fallback", "fallback_channel": channel}, flows=["login-otp"])
    texts = [w.text for w in rules_warnings(ordered())[Rule.objects.get().pk]]
    assert any("only 1 of 4 recent messages of login-otp carried a fallback e-mail address" in t for t in texts)


def test_moving_a_rule_rewrites_every_position_in_order() -> None:
    a = rule_with_steps("A", {"action": "notify"}, position=10)
    b = rule_with_steps("B", {"action": "notify"}, position=20)
    c = rule_with_steps("C", {"action": "notify"}, position=20)
    rule_move(rule=c, offset=-1)
    assert [(r.name, r.position) for r in Rule.objects.order_by("position")] == [("A", 1), ("C", 2), ("B", 3)]
    rule_move(rule=a, offset=-1)  # already first: stays
    assert Rule.objects.get(pk=a.pk).position == 1
    rule_move(rule=b, offset=1)  # already last: stays
    assert Rule.objects.get(pk=b.pk).position == 3


def test_saving_a_draft_keeps_existing_steps_by_id_and_reorders_them() -> None:
    rule = rule_with_steps("R", {"action": "retry_same", "count": 2, "delays": [30]}, {"action": "notify"})
    first, second = rule.steps.order_by("position")
    draft = RuleDraft(
        name="R", enabled=True, deadline_seconds=300, flows=[], countries=["FR"], statuses=[], error_classes=[],
        reasons=[], connection_ids=[], steps=[StepDraft("notify", id=second.pk), StepDraft("retry_same", 2, (30, 120),
                                                                                            id=first.pk)],
    )  # fmt: skip
    rule_save(draft=draft, rule=rule)
    assert [(s.pk, s.position, s.action, s.delays) for s in rule.steps.order_by("position")] == [
        (second.pk, 1, "notify", []),
        (first.pk, 2, "retry_same", [30, 120]),
    ]


def test_the_tester_shows_the_rule_and_its_steps_with_their_waits() -> None:
    channel = FallbackChannel.objects.create(slug="mail", kind="email", config={})
    rule_with_steps("Other", {"action": "notify"}, position=1, flows=["signup"])
    rule_with_steps(
        "FR OTP", {"action": "retry_same", "count": 2, "delays": [30, 120]},
        {"action": "fallback", "fallback_channel": channel}, position=2,
        flows=["login-otp"], countries=["FR"], error_classes=["temporary"], deadline_seconds=600,
    )  # fmt: skip
    message = MessageFactory(flow="login-otp", status=Status.UNDELIVERED, reason="absent_subscriber",
                             error_class="temporary", fallback_email="user@example.com")  # fmt: skip
    failed_at = message.submitted_at + timedelta(seconds=5)
    applied = which_rule(message, failed_at=failed_at)
    assert applied.rule is not None
    assert applied.rule.name == "FR OTP"
    assert [(s.wait, s.text) for s in applied.plan] == [
        (30, "retry on the same route (1 of 2)"),
        (120, "retry on the same route (2 of 2)"),
        (0, "fall back to mail (email) (1 of 1)"),
        (0, "then the product is told the failure is final"),
    ]
    assert applied.plan[1].at == failed_at + timedelta(seconds=150)
    assert applied.deadline == message.submitted_at + timedelta(seconds=600)
    assert describe_steps(applied.rule) == (
        "retry on the same route, 2 attempts (30s, 2m) → fall back to mail (email) · deadline 10m"
    )


def test_the_tester_on_a_described_message_says_a_missing_address_skips_the_fallback() -> None:
    channel = FallbackChannel.objects.create(slug="mail", kind="email", config={})
    rule_with_steps("Any", {"action": "fallback", "fallback_channel": channel}, statuses=[NO_RECEIPT])
    probe = probe_message(flow="login-otp", country="FR", connection=None, status=NO_RECEIPT, reason="")
    applied = which_rule(probe, seen=NO_RECEIPT)
    assert applied.plan[0].text.startswith("fall back to mail (email): skipped, no fallback e-mail address")
    assert which_rule(probe, seen=Status.UNDELIVERED).rule is None


def test_the_dry_run_counts_what_the_draft_rule_would_have_done() -> None:
    now = timezone.now()
    channel = FallbackChannel.objects.create(slug="mail", kind="email", config={})
    saved = rule_with_steps("OTP", {"action": "notify"}, flows=["login-otp"])
    for cost in (Decimal("0.05"), None, None):
        MessageFactory(flow="login-otp", status=Status.UNDELIVERED, error_class="temporary", cost=cost,
                       currency="EUR" if cost else "", fallback_email="u@example.com",
                       submitted_at=now - timedelta(hours=1))  # fmt: skip
    MessageFactory(flow="login-otp", status=Status.DELIVERED, submitted_at=now - timedelta(hours=1))
    MessageFactory(flow="login-otp", status=Status.UNDELIVERED, submitted_at=now - timedelta(hours=30))
    MessageFactory(flow="signup", status=Status.FAILED, submitted_at=now - timedelta(hours=2))
    draft = RuleDraft(
        name="OTP", enabled=True, deadline_seconds=None, flows=["login-otp"], countries=[], statuses=[],
        error_classes=[], reasons=[], connection_ids=[],
        steps=[StepDraft("retry_same", 2, (30, 120)), StepDraft("fallback", fallback_channel_id=channel.pk)],
    )  # fmt: skip
    result = dry_run(draft_rule_set(rule_from_draft(draft, base=saved)), now=now)
    assert (result.considered, result.capped, result.unmatched) == (4, False, 1)
    (tally,) = result.tallies
    assert (tally.messages, tally.retries, tally.fallbacks, tally.notices, tally.alerts) == (3, 6, 3, 3, 0)
    # One message's cost is known: its two retries on the same route are priced at it.
    assert tally.costs == {"EUR": Decimal("0.100000")}
    assert tally.unpriced == 4 + 3
    # The saved rule is unchanged: a dry run stores nothing.
    assert list(Rule.objects.get(pk=saved.pk).steps.values_list("action", flat=True)) == ["notify"]


def test_the_dry_run_says_when_it_was_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    from retries import policy_simulation

    monkeypatch.setattr(policy_simulation, "MAX_MESSAGES", 2)
    MessageFactory.create_batch(3, status=Status.UNDELIVERED)
    result = dry_run(draft_rule_set(rule_from_draft(RuleDraft("D", True, None, [], [], [], [], [], [], []))),
                     now=timezone.now() + timedelta(seconds=1))  # fmt: skip
    assert (result.considered, result.capped) == (2, True)


def test_connections_are_part_of_shadowing() -> None:
    one, two = ConnectionFactory(), ConnectionFactory()
    first = rule_with_steps("On one", {"action": "notify"}, position=1)
    first.connections.set([one])
    second = rule_with_steps("On two", {"action": "notify"}, position=2)
    second.connections.set([two])
    assert rules_warnings(ordered())[second.pk] == []


def test_a_rule_saved_anywhere_has_its_countries_upper_cased_and_unknown_ones_refused() -> None:
    # The Django admin's raw lists go through the model's checks too.
    rule = Rule(name="raw", countries=["fr", " be"])
    rule.full_clean()
    assert rule.countries == ["FR", "BE"]
    with pytest.raises(ValidationError, match="unknown country code: XX"):
        Rule(name="raw", countries=["xx"]).full_clean()


def test_changing_a_channels_settings_forgets_its_last_test() -> None:
    channel = channel_save(channel=None, slug="mail", kind="email", sender_id="", enabled=True,
                           settings={"from_email": "a@example.com"}, secret="")  # fmt: skip
    FallbackChannel.objects.filter(pk=channel.pk).update(tested_at=timezone.now(), test_ok=True, test_summary="sent")
    channel.refresh_from_db()
    channel_save(channel=channel, slug="mail", kind="email", sender_id="", enabled=False,
                 settings={"from_email": "a@example.com"}, secret="")  # fmt: skip
    assert FallbackChannel.objects.get().test_ok is True
    channel_save(channel=channel, slug="mail", kind="email", sender_id="", enabled=True,
                 settings={"from_email": "b@example.com"}, secret="")  # fmt: skip
    assert FallbackChannel.objects.get().tested_at is None
