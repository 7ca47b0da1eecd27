"""The console in a real browser (Debian's Chromium through Playwright): each role signs in,
support finds a number typed with spaces, reads its timeline and resends it, and forbidden pages
are refused. `make screenshots` saves the main pages for the README."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from dlrconsole.audit.models import AuditEntry
from receipts.models import Receipt
from retries.attempts import attempts_run_due
from retries.models import Attempt
from tests.browser.conftest import screenshot, sign_in
from tests.factories import ConnectionFactory, MessageFactory
from tests.send_api import FakeGateway

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def receipt_for(message, status: str, at, raw: str, **fields) -> Receipt:
    return Receipt.objects.create(
        connection=message.connection, message=message, provider_message_id=message.provider_message_id,
        dedupe_key=f"{message.pk}-{status}", provider_status=status, status=status, received_at=at,
        outcome="applied", raw_body=raw, **fields,
    )  # fmt: skip


@pytest.fixture
def traffic(roles: None):
    """A few messages with receipts: one undelivered OTP to +33 6 12 34 56 78, others delivered."""
    connection = ConnectionFactory(slug="twilio-eu", name="Twilio EU")
    now = timezone.now()
    for n in range(6):
        sent_at = now - timedelta(minutes=5 * n)
        delivered = MessageFactory(
            connection=connection, recipient=f"+4477009001{n:02d}", country="GB", status="delivered",
            submitted_at=sent_at, final_at=sent_at + timedelta(minutes=1),
        )  # fmt: skip
        receipt_for(delivered, "delivered", delivered.final_at, '{"status":"delivered"}')
    failure = {"error_code": "30005", "reason": "unknown_subscriber", "error_class": "permanent"}
    otp = MessageFactory(
        connection=connection, provider_message_id="SM0001", recipient="+33612345678", country="FR",
        flow="login-otp", status="undelivered", body="Your code is 123456",
        submitted_at=now - timedelta(minutes=2), **failure,
    )  # fmt: skip
    receipt_for(otp, "undelivered", now - timedelta(minutes=1), '{"MessageStatus":"undelivered","ErrorCode":"30005"}',
                **failure)  # fmt: skip
    return otp


@pytest.mark.parametrize(("role", "sees_audit"), [("viewer", False), ("support", False), ("admin", True)])
def test_each_role_signs_in_to_the_overview(page: Page, live_server, traffic, role, sees_audit):
    sign_in(page, live_server.url, role)
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_test_id("role-badge")).to_have_text(role)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(1 if sees_audit else 0)
    if role == "support":
        screenshot(page, "overview")
    if role == "admin":
        page.get_by_role("link", name="Audit log").click()
        expect(page.get_by_role("heading", name=re.compile("Audit log"))).to_be_visible()
        screenshot(page, "audit-log")


def test_a_wrong_password_is_refused_with_a_message(page: Page, live_server, roles):
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login/"))


def test_support_finds_a_number_typed_with_spaces_and_reads_its_timeline(page: Page, live_server, traffic):
    sign_in(page, live_server.url, "support")
    page.get_by_role("link", name="Messages").click()
    page.get_by_test_id("search-box").fill("+33 6 12 34 56 78")
    page.get_by_test_id("search-box").press("Enter")
    results = page.get_by_test_id("results-table")
    expect(results.get_by_text("+33 6 12 34 56 78")).to_be_visible()  # support sees the whole number
    expect(results.locator("tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=%2B33"))  # the query is in the URL: a shareable link
    screenshot(page, "search")
    page.get_by_test_id("result-link").first.click()
    expect(page.get_by_test_id("status-badge").first).to_have_text(re.compile("undelivered", re.I))
    timeline = page.get_by_test_id("timeline")
    expect(timeline.get_by_text("30005").first).to_be_visible()
    expect(page.get_by_test_id("explanation")).to_contain_text(re.compile(r"\w"))
    screenshot(page, "message")
    page.go_back()
    expect(page.get_by_test_id("search-box")).to_have_value("+33 6 12 34 56 78")


def test_a_viewer_sees_masked_numbers_and_is_refused_a_message_page(page: Page, live_server, traffic):
    sign_in(page, live_server.url, "viewer")
    page.goto(f"{live_server.url}/console/messages/?q={traffic.provider_message_id}")
    expect(page.get_by_test_id("results-table").get_by_text("+336•••••678")).to_be_visible()
    expect(page.get_by_text("+33612345678")).to_have_count(0)
    # A number is not searched for a viewer: each answer would say whether a guess was sent to.
    page.goto(f"{live_server.url}/console/messages/?q=%2B33612345678")
    expect(page.get_by_test_id("search-errors")).to_contain_text("needs the permission to see full numbers")
    expect(page.get_by_test_id("results-table")).to_have_count(0)
    response = page.goto(f"{live_server.url}/console/messages/{traffic.pk}/")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", name="You cannot open this page")).to_be_visible()


def test_support_is_refused_the_audit_log(page: Page, live_server, traffic):
    sign_in(page, live_server.url, "support")
    response = page.goto(f"{live_server.url}/console/audit/")
    assert response is not None
    assert response.status == 403


def test_support_sees_the_warning_before_resending_a_never_retry_failure_and_must_give_a_reason(
    page: Page, live_server, traffic, gateway: FakeGateway
):
    gateway.configure(traffic.connection)
    sign_in(page, live_server.url, "support")
    page.goto(f"{live_server.url}/console/messages/{traffic.pk}/")
    expect(page.get_by_test_id("explanation")).to_contain_text("you will be asked why")
    page.get_by_test_id("resend-button").click()
    expect(page.get_by_role("heading", name="Resend this message?")).to_be_visible()
    expect(page.get_by_test_id("never-retry-warning")).to_contain_text("This failure is never retried")
    screenshot(page, "resend")
    page.get_by_test_id("confirm-resend").click()  # no reason: the browser keeps the form here
    expect(page.get_by_role("heading", name="Resend this message?")).to_be_visible()
    assert not Attempt.objects.exists()
    page.get_by_test_id("resend-reason").fill("The user ported the number and asked for the code again")
    page.get_by_test_id("confirm-resend").click()
    expect(page.get_by_text(re.compile("Resend scheduled"))).to_be_visible()
    assert AuditEntry.objects.get(model="retries.attempt").changes[0]["new"].startswith("The user ported")
    attempts_run_due()  # what the runner does on its next pass
    assert len(gateway.sends) == 1
    page.reload()
    expect(page.get_by_test_id("attempt-chain")).to_contain_text("Resend 1")
    expect(page.get_by_test_id("attempt-chain")).to_contain_text("accepted by the provider")


@pytest.mark.parametrize("where", ["message", "search", "overview", "resend"])
def test_support_pages_fit_a_390_px_wide_phone_without_horizontal_scrolling(
    page: Page, live_server, traffic, gateway: FakeGateway, where
):
    gateway.configure(traffic.connection)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server.url, "support")
    paths = {
        "message": f"/console/messages/{traffic.pk}/",
        "search": "/console/messages/?q=SM0001",
        "overview": "/console/",
        "resend": f"/console/messages/{traffic.pk}/resend/",
    }
    page.goto(f"{live_server.url}{paths[where]}")
    page.wait_for_load_state()
    screenshot(page, f"narrow-{where}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_the_overviews_open_table_stays_open_when_the_figures_refresh(page: Page, live_server, traffic):
    sign_in(page, live_server.url, "support")
    details = page.get_by_test_id("trend-details")
    details.locator("summary").click()
    expect(details).to_have_attribute("open", "")
    # The window links swap the same fragment as the 30-second refresh.
    page.get_by_role("navigation", name="Time window").get_by_role("link").last.click()
    expect(page).to_have_url(re.compile(r"window="))
    expect(page.get_by_test_id("trend-details")).to_have_attribute("open", "")


def test_signing_out_ends_the_session(page: Page, live_server, traffic):
    sign_in(page, live_server.url, "viewer")
    page.get_by_test_id("user-menu").click()
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{live_server.url}/console/")
    expect(page).to_have_url(re.compile(r"/login/"))


def test_the_admin_and_the_api_documentation_work_under_the_content_security_policy(page: Page, live_server, roles):
    sign_in(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/admin/receipts/connection/add/")
    expect(page.get_by_role("heading", name=re.compile("Add connection"))).to_be_visible()
    page.goto(f"{live_server.url}/api/v1/docs/")
    # Swagger UI builds the page from its scripts: the operations appear only if they ran.
    expect(page.locator(".opblock-tag").first).to_be_visible()
    expect(page.get_by_text("/api/v1/messages/").first).to_be_visible()
