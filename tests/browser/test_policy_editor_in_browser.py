"""The policy editor in a real browser: an admin builds "retry temporary failures of the login
OTP in France twice (30 s, 2 min), then fall back to e-mail" from an empty editor, the tester
shows which rule applies, a narrower rule added after it is flagged as shadowed; at 390 px
wide the pages do not scroll sideways."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from receipts.rollups import rebuild
from retries.models import FallbackChannel, Rule
from tests.browser.conftest import screenshot, sign_in
from tests.factories import MessageFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def empty_editor(roles: None) -> FallbackChannel:
    """No rules, a login-otp message seen recently, and a tested e-mail channel."""
    Rule.objects.all().delete()
    MessageFactory(flow="login-otp", fallback_email="user@example.com")
    rebuild.rebuild()  # the editor offers the flows of the last week's day rollups
    return FallbackChannel.objects.create(
        slug="mail", kind="email", config={"from_email": "otp@example.com"},
        tested_at=timezone.now(), test_ok=True, test_summary="sent",
    )  # fmt: skip


def fill_step(page: Page, index: int, action: str, *, count: str = "", waits: str = "", channel: str = "") -> None:
    step = page.get_by_test_id("step").nth(index)
    step.locator("select[name$='-action']").select_option(action)
    if count:
        step.locator("input[name$='-count']").fill(count)
    if waits:
        step.locator("input[name$='-delays']").fill(waits)
    if channel:
        step.locator("select[name$='-fallback_channel']").select_option(label=channel)


def add_step(page: Page) -> None:
    before = page.get_by_test_id("step").count()
    page.get_by_test_id("add-step").click()
    expect(page.get_by_test_id("step")).to_have_count(before + 1)


def test_an_admin_builds_the_france_login_otp_policy_and_tests_it(page: Page, live_server, empty_editor) -> None:
    sign_in(page, live_server.url, "admin")
    page.get_by_role("link", name="Policies").click()
    expect(page.get_by_role("heading", name="Retry policies")).to_be_visible()
    page.get_by_test_id("new-rule").click()

    page.get_by_label("Name", exact=True).fill("FR login OTP")
    page.get_by_label("login-otp").check()
    # Countries are choices by name; the filter box narrows the long list.
    page.get_by_label("Filter countries").fill("fran")
    expect(page.get_by_label("Germany (DE, +49)")).to_be_hidden()
    page.get_by_label("France (FR, +33)").check()
    page.get_by_label("Temporary").check()
    add_step(page)
    fill_step(page, 0, "retry_same", count="2", waits="30s, 2m")
    add_step(page)
    fill_step(page, 1, "fallback", channel="mail")
    # The values typed survive adding a step (the fragment is rebuilt from what was posted).
    expect(page.get_by_test_id("step").nth(0).locator("input[name$='-delays']")).to_have_value("30s, 2m")
    page.get_by_test_id("save-rule").click()

    expect(page).to_have_url(re.compile(r"/console/policies/$"))
    row = page.get_by_test_id("rule-row").filter(has_text="FR login OTP")
    expect(row).to_contain_text("login-otp · FR · temporary")
    expect(row).to_contain_text("retry on the same route, 2 attempts (30s, 2m) → fall back to mail (email)")
    expect(row.get_by_test_id("rule-warnings")).to_have_count(0)
    rule = Rule.objects.get()
    assert rule.countries == ["FR"]
    assert list(rule.steps.values_list("action", "count", "delays")) == [
        ("retry_same", 2, [30, 120]),
        ("fallback", 1, []),
    ]

    page.get_by_role("link", name="Which rule applies?").click()
    form = page.get_by_test_id("tester-fields")
    form.get_by_label("Flow").select_option("login-otp")
    form.get_by_label("Country").fill("FR")
    form.get_by_label("Status").select_option("undelivered")
    form.get_by_label("Reason").select_option("absent_subscriber")
    page.get_by_test_id("tester-submit").click()
    result = page.get_by_test_id("tester-result")
    expect(result).to_contain_text("Rule “FR login OTP” applies")
    expect(result).to_contain_text("+30 s retry on the same route (1 of 2)")
    expect(result).to_contain_text("+2 min retry on the same route (2 of 2)")
    expect(result).to_contain_text("fall back to mail (email)")

    # A narrower rule after it never acts: the list says so.
    page.goto(f"{live_server.url}/console/policies/rules/new/")
    page.get_by_label("Name", exact=True).fill("FR OTP, phone off")
    page.get_by_label("login-otp").check()
    page.get_by_label("France (FR, +33)").check()
    page.get_by_label("Temporary").check()
    add_step(page)
    fill_step(page, 0, "notify")
    page.get_by_test_id("save-rule").click()
    shadowed = page.get_by_test_id("rule-row").filter(has_text="FR OTP, phone off")
    expect(shadowed.get_by_test_id("rule-warnings")).to_contain_text(
        "never matches: rule “FR login OTP” is tried first"
    )
    screenshot(page, "policies")


def test_the_policy_pages_fit_390_px(page: Page, live_server, empty_editor) -> None:
    sign_in(page, live_server.url, "admin")
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("policies/", "policies/rules/new/", "policies/which-rule/", "policies/channels/",
                 f"policies/channels/{empty_editor.pk}/"):  # fmt: skip
        page.goto(f"{live_server.url}/console/{path}")
        if path == "policies/rules/new/":
            add_step(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"/console/{path} is {width} px wide"
