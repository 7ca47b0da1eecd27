"""Every registry is built from its classes, keyed by what the class says it is: adding a
provider, a player, a decision action or an alert channel is one module and one line."""

from __future__ import annotations

from alerts.channels.registry import CHANNELS, channel_choices
from dlrconsole.simulator.players.registry import PLAYERS
from receipts.models import Connection
from receipts.providers.registry import ADAPTERS, provider_choices, provider_label
from retries.actions.registry import ACTIONS, action_choices, get_action
from retries.models import Step


def test_providers_are_keyed_by_their_adapters_kind_and_labelled_by_it():
    assert all(kind == adapter.kind for kind, adapter in ADAPTERS.items())
    assert provider_choices() == [(kind, adapter.label) for kind, adapter in ADAPTERS.items()]
    assert dict(Connection._meta.get_field("provider").choices) == dict(provider_choices())
    assert provider_label("twilio") == "Twilio"


def test_every_player_plays_a_provider_of_the_same_kind():
    assert all(kind == player.kind for kind, player in PLAYERS.items())
    assert set(PLAYERS) == set(ADAPTERS)


def test_decision_actions_are_keyed_by_their_slug_and_are_the_rules_choices():
    assert all(slug == action.slug for slug, action in ACTIONS.items())
    assert {"retry_same", "retry_other", "fallback", "notify", "alert", "none"} == set(ACTIONS)
    assert dict(Step._meta.get_field("action").choices) == dict(action_choices())
    assert get_action("removed-with-its-app").slug == "none"


def test_alert_channels_are_keyed_by_their_kind():
    assert all(kind == cls.kind for kind, cls in CHANNELS.items())
    assert [kind for kind, _label in channel_choices()] == ["email", "slack", "teams", "webhook", "pagerduty"]
