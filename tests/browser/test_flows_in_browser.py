"""The launch checklist in a real browser: an admin opens a flow from the Launch page, reads its
readiness (what is missing, with a link to fix it), records a no-go with its reason and opens
the checklist for the meeting: at 390 px the pages fit the screen, and printed it leaves out the menus
and the links and keeps every item and the decision."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from receipts.flows.models import Flow
from tests.browser.conftest import screenshot, sign_in
from tests.factories import ConnectionFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_admin_records_a_no_go_and_prints_the_launch_checklist(page: Page, live_server, roles) -> None:
    flow = Flow.objects.create(
        slug="login-otp", name="Login OTP, France", countries=["FR"], monthly_volume=250_000, sla_seconds=60
    )
    flow.connections.set([ConnectionFactory(slug="fr-main")])
    sign_in(page, live_server.url, "admin")
    page.get_by_role("link", name="Launch").click()
    page.get_by_role("link", name="Login OTP, France").click()
    owners = page.get_by_test_id("readiness-owners")
    expect(owners).to_contain_text("No technical owner.")
    expect(owners.get_by_role("link", name=re.compile("Edit the flow"))).to_be_visible()
    expect(page.get_by_test_id("readiness-fallback")).to_contain_text("FR through fr-main: never tested.")

    page.get_by_role("radio", name="No-go").check()
    page.get_by_label("Rationale").fill("No owners yet; fallback untested.")
    page.get_by_test_id("decide").click()
    expect(page.get_by_role("status")).to_contain_text("Decision recorded: No-go.")
    expect(page.get_by_test_id("decision").first).to_contain_text("(not ready then)")

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the flow's page
    page.get_by_test_id("edit-flow").click()
    # The click only starts the navigation: measuring before the edit page has loaded reads a
    # document that is not there yet.
    expect(page.get_by_role("heading", name="Edit Login OTP, France")).to_be_visible()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.go_back()
    page.get_by_test_id("checklist-link").click()
    checklist = page.get_by_test_id("checklist")
    expect(checklist).to_contain_text("Launch checklist: Login OTP, France")
    expect(checklist).to_contain_text("No-go on")
    expect(checklist).to_contain_text("No owners yet; fallback untested.")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "flow-checklist")

    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.get_by_test_id("readiness-owners").locator("a")).to_be_hidden()
    expect(page.get_by_test_id("readiness-owners")).to_contain_text("No business owner.")
    expect(page.get_by_test_id("readiness-reports")).to_be_visible()
