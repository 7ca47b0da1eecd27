"""Routes on a phone: the page fits 390 px (its wide table scrolls in its own box), and a
figure's link opens the search listing exactly the messages it counted."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from tests.browser.conftest import screenshot, sign_in
from tests.rollups.traffic import route_traffic

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_support_opens_routes_on_a_phone_and_follows_a_figure_to_its_messages(
    browser: Browser, live_server, roles: None
) -> None:
    route_traffic(now=timezone.now())
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB", is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    refused: list[str] = []
    page.on("console", lambda note: refused.append(note.text) if "Content Security Policy" in note.text else None)
    try:
        sign_in(page, live_server.url, "support")
        page.goto(f"{live_server.url}/console/?window=1h")
        expect(page.get_by_test_id("trend-chart")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.goto(f"{live_server.url}/console/routes/?window=1h")
        expect(page.get_by_test_id("figures-table")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "routes-phone")
        failed = page.get_by_test_id("row").first.get_by_test_id("failed-link")
        expect(failed).to_have_text("2")  # France on eu-route: absent and unknown subscriber
        failed.click()
        page.wait_for_url("**/console/messages/**")
        expect(page.get_by_test_id("results-summary")).to_contain_text("2 messages")
        expect(page.get_by_test_id("results-table").locator("tbody tr")).to_have_count(2)
    finally:
        context.close()
    assert not refused, refused
