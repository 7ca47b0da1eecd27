"""The policy editor's pages: admins only, conditions refused or normalized with a clear
message, steps added and moved in place, every change in the audit log, the channel's
credential never shown back."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dlrconsole.audit.models import AuditEntry
from dlrconsole.console.policy_forms import CountriesField
from receipts.models import Message
from receipts.rollups import rebuild
from receipts.statuses import Status
from retries.models import Attempt, Decision, FallbackChannel, Rule
from tests.console.conftest import HTMX
from tests.factories import MessageFactory, rule_with_steps

pytestmark = pytest.mark.django_db
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def flow_in_use(**fields: Any) -> Message:
    """A message of the flow, counted in the rollups: the editor offers the flows of the last
    week's day rollups."""
    message = MessageFactory(**fields)
    rebuild.rebuild()
    return message


@pytest.fixture(autouse=True)
def no_shipped_rules() -> None:
    Rule.objects.all().delete()


def rule_post(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "FR login OTP", "enabled": "on", "flows": ["login-otp"], "countries": ["fr"],
        "error_classes": ["temporary"], "deadline": "10m", "op": "save",
        "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "0",
        "steps-0-action": "retry_same", "steps-0-count": "2", "steps-0-delays": "30s, 2m",
    }  # fmt: skip
    return data | overrides


@pytest.mark.parametrize(
    "page", ["console:policies", "console:rule-new", "console:policy-tester", "console:channels", "console:channel-new"]
)
def test_support_and_viewers_get_403_on_the_policy_pages(support: Client, viewer: Client, page: str) -> None:
    assert support.get(reverse(page)).status_code == 403
    assert viewer.get(reverse(page)).status_code == 403


def test_support_cannot_save_a_rule(support: Client) -> None:
    flow_in_use(flow="login-otp")
    assert support.post(reverse("console:rule-new"), rule_post()).status_code == 403
    assert not Rule.objects.exists()


def test_an_admin_saves_a_rule_with_the_country_normalized_and_it_is_audited(admin_client_role: Client) -> None:
    flow_in_use(flow="login-otp")
    response = admin_client_role.post(reverse("console:rule-new"), rule_post())
    assert response.status_code == 302
    rule = Rule.objects.get()
    assert (rule.flows, rule.countries, rule.error_classes, rule.deadline_seconds) == (
        ["login-otp"], ["FR"], ["temporary"], 600,
    )  # fmt: skip
    assert list(rule.steps.values_list("action", "count", "delays")) == [("retry_same", 2, [30, 120])]
    entry = AuditEntry.objects.get(model="retries.rule", object_id=str(rule.pk))
    assert entry.username == "admin-user"
    assert entry.action == AuditEntry.Action.CREATED
    assert AuditEntry.objects.filter(model="retries.step", username="admin-user").exists()
    listing = admin_client_role.get(reverse("console:policies")).content.decode()
    assert "login-otp · FR · temporary" in listing
    assert "retry on the same route, 2 attempts (30s, 2m) · deadline 10m" in listing


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("countries", ["FR", "XX"], "unknown country “XX”: choose one of the listed countries"),
        ("flows", ["login-otpp"], "unknown flow “login-otpp”: choose one of the listed flows"),
        ("reasons", ["temprary"], "unknown reason “temprary”: choose one of the listed reasons"),
        ("steps-0-delays", "30s, soon", "“soon” is not a duration: write e.g. 30s, 2m or 1h"),
        ("steps-0-count", "11", "Ensure this value is less than or equal to 10."),
    ],
)
def test_unknown_values_are_refused_with_what_to_write(
    admin_client_role: Client, field: str, value: Any, message: str
) -> None:
    flow_in_use(flow="login-otp")
    response = admin_client_role.post(reverse("console:rule-new"), rule_post(**{field: value}))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Rule.objects.exists()


def test_countries_are_offered_by_name_chosen_and_recently_seen_ones_first(admin_client_role: Client) -> None:
    flow_in_use(flow="login-otp", country="BE")
    rule = rule_with_steps("ES", {"action": "notify"}, countries=["ES"])
    page = admin_client_role.get(reverse("console:rule-edit", args=[rule.pk])).content.decode()
    spain, belgium, france = (page.index(f'value="{code}"') for code in ("ES", "BE", "FR"))
    assert spain < belgium < france
    assert "Spain (ES, +34)" in page
    assert "Belgium (BE, +32)" in page
    assert "France (FR, +33)" in page
    assert 'value="ES" checked' in page
    # The filter box waits for the script: without it, the list alone works.
    assert 'class="choice-filter"' in page
    assert "hidden>" in page


def test_the_editor_reads_posted_country_codes_in_any_case_and_refuses_unknown_ones() -> None:
    field = CountriesField()
    assert field.clean([" fr", "BE", "FR"]) == ["BE", "FR"]
    with pytest.raises(ValidationError, match="unknown country “XX”: choose one of the listed countries"):
        field.clean(["xx"])


def test_a_fallback_step_without_a_channel_is_refused(admin_client_role: Client) -> None:
    response = admin_client_role.post(reverse("console:rule-new"), rule_post(**{"steps-0-action": "fallback"}))
    assert response.status_code == 400
    assert "choose the channel to fall back to" in response.content.decode()


def test_steps_are_added_and_moved_in_place_without_saving(admin_client_role: Client) -> None:
    data = rule_post(**{"steps-TOTAL_FORMS": "2", "steps-1-action": "notify", "steps-1-count": "1", "op": "up-1"})
    response = admin_client_role.post(reverse("console:rule-steps"), data, **HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page
    assert page.index('value="notify" selected') < page.index('value="retry_same" selected')
    added = admin_client_role.post(reverse("console:rule-steps"), rule_post(op="add"), **HTMX).content.decode()
    assert 'name="steps-TOTAL_FORMS" value="2"' in added
    assert not Rule.objects.exists()


def test_moving_a_rule_in_the_list_reorders_and_audits(admin_client_role: Client) -> None:
    rule_with_steps("A", {"action": "notify"}, position=1)
    b = rule_with_steps("B", {"action": "notify"}, position=2)
    admin_client_role.post(reverse("console:rule-move", args=[b.pk]), {"direction": "up"})
    assert list(Rule.objects.order_by("position").values_list("name", flat=True)) == ["B", "A"]
    assert AuditEntry.objects.filter(model="retries.rule", object_id=str(b.pk), username="admin-user").exists()


def test_the_list_flags_a_shadowed_rule(admin_client_role: Client) -> None:
    rule_with_steps("Any temporary", {"action": "retry_same"}, position=1, error_classes=["temporary"])
    rule_with_steps("FR", {"action": "retry_same"}, position=2, countries=["FR"], error_classes=["temporary"])
    page = admin_client_role.get(reverse("console:policies")).content.decode()
    assert "never matches: rule “Any temporary” is tried first" in page


def test_the_tester_shows_the_rule_for_a_described_message(admin_client_role: Client) -> None:
    flow_in_use(flow="login-otp")
    rule_with_steps("FR OTP", {"action": "retry_same", "count": 2, "delays": [30, 120]}, flows=["login-otp"],
                    countries=["FR"])  # fmt: skip
    query = {
        "by": "fields",
        "flow": "login-otp",
        "country": "fr",
        "status": "undelivered",
        "reason": "absent_subscriber",
    }
    page = admin_client_role.get(reverse("console:policy-tester"), query).content.decode()
    assert "Rule “" in page
    assert "FR OTP" in page
    assert "retry on the same route (2 of 2)" in page
    refused = admin_client_role.get(reverse("console:policy-tester"), query | {"country": "ZZ"})
    assert refused.status_code == 400


def test_the_tester_takes_a_message_by_id(admin_client_role: Client) -> None:
    message = flow_in_use(flow="login-otp", status=Status.UNDELIVERED)
    page = admin_client_role.get(reverse("console:policy-tester"), {"message": message.pk}).content.decode()
    assert "No rule applies" in page


def test_the_dry_run_stores_nothing_and_counts_unpriced_sends(admin_client_role: Client) -> None:
    flow_in_use(flow="login-otp", status=Status.UNDELIVERED, error_class="temporary")
    response = admin_client_role.post(reverse("console:rule-new"), rule_post(op="dry-run", countries=[]))
    page = response.content.decode()
    assert "1 failed message replayed" in page
    assert "2 unpriced" in page
    assert not Rule.objects.exists()


def test_a_channel_is_saved_with_its_settings_validated_and_its_secret_never_shown(admin_client_role: Client) -> None:
    bad = {"slug": "push", "kind": "generic-webhook", "enabled": "on", "setting_url": "ftp://x", "secret": SECRET}
    response = admin_client_role.post(reverse("console:channel-new"), bad)
    assert response.status_code == 400
    assert not FallbackChannel.objects.exists()
    good = bad | {"setting_url": "https://example.com/hook"}
    assert admin_client_role.post(reverse("console:channel-new"), good).status_code == 302
    channel = FallbackChannel.objects.get()
    assert channel.config == {"url": "https://example.com/hook", "secret": SECRET}
    page = admin_client_role.get(reverse("console:channel-edit", args=[channel.pk])).content.decode()
    assert SECRET not in page
    assert "never tested" in page
    # A blank credential keeps the stored one.
    admin_client_role.post(reverse("console:channel-edit", args=[channel.pk]), good | {"secret": ""})
    channel.refresh_from_db()
    assert channel.config["secret"] == SECRET
    assert AuditEntry.objects.filter(model="retries.fallbackchannel", username="admin-user").exists()


def test_a_test_send_to_an_invalid_address_is_refused(admin_client_role: Client) -> None:
    channel = FallbackChannel.objects.create(slug="mail", kind="email", config={})
    response = admin_client_role.post(reverse("console:channel-test", args=[channel.pk]), {"to": "not-an-address"})
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    channel.refresh_from_db()
    assert channel.tested_at is None


def test_choosing_a_kind_shows_only_its_settings(admin_client_role: Client) -> None:
    response = admin_client_role.get(reverse("console:channel-new"), {"kind": "generic-webhook"}, **HTMX)
    fragment = response.content.decode()
    assert 'name="setting_url"' in fragment
    assert 'name="setting_from_email"' not in fragment
    assert "<html" not in fragment
    page = admin_client_role.get(reverse("console:channel-new")).content.decode()
    assert 'name="setting_from_email"' in page  # e-mail is the default kind
    assert 'name="setting_url"' not in page


def test_an_infobip_channels_api_key_is_a_credential_never_shown(admin_client_role: Client) -> None:
    channel = FallbackChannel.objects.create(
        slug="sms", kind="infobip", config={"base_url": "https://api.example.com", "api_key": "infobip-key-123456789"}
    )
    page = admin_client_role.get(reverse("console:channel-edit", args=[channel.pk])).content.decode()
    assert "https://api.example.com" in page
    assert "infobip-key-123456789" not in page


def test_without_javascript_a_step_button_redraws_the_form_as_typed(admin_client_role: Client) -> None:
    flow_in_use(flow="login-otp")
    response = admin_client_role.post(reverse("console:rule-new"), rule_post(op="add", name=""))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="steps-TOTAL_FORMS" value="2"' in page
    assert 'value="FR" checked' in page
    assert 'value="login-otp" checked' in page
    assert "Nothing was saved" not in page
    assert not Rule.objects.exists()


def test_deleting_a_rule_says_what_happens_first_then_deletes_it_audited(admin_client_role: Client) -> None:
    rule = rule_with_steps("FR retry", {"action": "retry_same", "count": 2}, countries=["FR"])
    step = rule.steps.get()
    message = MessageFactory(status=Status.UNDELIVERED)
    decision = Decision.objects.create(message=message, rule=rule, step=step, action="retry_same",
                                       state=Decision.State.SCHEDULED, why="r", created_at=timezone.now())  # fmt: skip
    Attempt.objects.create(decision=decision, step=step, chain_root=message, number=1, idempotency_key="k1",
                           due_at=timezone.now() + timedelta(minutes=2))  # fmt: skip
    url = reverse("console:rule-delete", args=[rule.pk])
    page = admin_client_role.get(url).content.decode()
    assert "Delete rule “FR retry”?" in page
    assert "1 attempt it scheduled, for 1 message, still runs" in page
    assert "The 1 decision it already took stays on the messages' timelines" in page
    assert Rule.objects.filter(pk=rule.pk).exists()  # looking is not deleting

    assert admin_client_role.post(url).status_code == 302
    assert not Rule.objects.filter(pk=rule.pk).exists()
    decision.refresh_from_db()
    assert decision.rule_id is None
    assert decision.why == "r"
    entry = AuditEntry.objects.get(model="retries.rule", object_id=str(rule.pk), action=AuditEntry.Action.DELETED)
    assert entry.username == "admin-user"
    assert admin_client_role.get(reverse("audit-log")).content.decode().count("FR retry") >= 1


def test_support_cannot_delete_a_rule(support: Client) -> None:
    rule = rule_with_steps("Any", {"action": "notify"})
    assert support.get(reverse("console:rule-delete", args=[rule.pk])).status_code == 403
    assert support.post(reverse("console:rule-delete", args=[rule.pk])).status_code == 403
    assert Rule.objects.filter(pk=rule.pk).exists()
