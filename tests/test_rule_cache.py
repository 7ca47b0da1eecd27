"""Decisions read the rules from a short-lived per-process cache that edits clear at once."""

from __future__ import annotations

import pytest
from django.utils import timezone

from receipts.models import OutboxEvent
from retries.decisions import decide
from retries.models import Rule
from retries.rule_cache import rule_cache
from tests.factories import ConnectionFactory, MessageFactory, rule_with_steps

# The shipped rules, as migrations install them: a transactional test run before in the same
# process (another file, under xdist) flushes them away.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("default_rules")]


@pytest.fixture(autouse=True)
def cached(settings):
    settings.DLR_RULES_CACHE_SECONDS = 60
    rule_cache.clear()
    yield
    rule_cache.clear()


def delivered() -> OutboxEvent:
    message = MessageFactory(status="delivered")
    return OutboxEvent.objects.create(message=message, kind="status_changed", status="delivered",
                                      created_at=timezone.now())  # fmt: skip


def test_rules_are_read_once_for_many_decisions(django_assert_max_num_queries):
    decide(delivered())
    event = delivered()
    with django_assert_max_num_queries(20) as captured:
        decide(event)
    assert not any('FROM "retries_rule"' in q["sql"] for q in captured.captured_queries)


def test_saving_a_rule_applies_to_the_next_decision_at_once():
    assert decide(delivered())[0].action == "notify"
    rule_with_steps("Delivered: nothing", {"action": "none"}, statuses=["delivered"])
    assert decide(delivered())[0].action == "none"


def test_disabling_a_rule_through_save_applies_at_once():
    decide(delivered())
    rule = Rule.objects.get(name="Delivered: tell the product")
    rule.enabled = False
    rule.save()
    assert decide(delivered())[0].action == "none"  # no other rule matches a delivery


def test_cached_rules_carry_their_connections_and_steps_and_read_nothing_more(django_assert_num_queries):
    route, other = ConnectionFactory(), ConnectionFactory()
    rule = rule_with_steps("Route: tell, then nothing", {"action": "notify"}, {"action": "none"}, position=0)
    rule.connections.add(route)
    (cached_rule,) = [r for r in rule_cache.get() if r.pk == rule.pk]
    with django_assert_num_queries(0):
        assert cached_rule.connection_ids() == {route.pk}
        assert [step.action for step in cached_rule.step_list()] == ["notify", "none"]
    # An edit of its connections clears the cache: the next read carries the new ones.
    rule.connections.add(other)
    (cached_rule,) = [r for r in rule_cache.get() if r.pk == rule.pk]
    assert cached_rule.connection_ids() == {route.pk, other.pk}
