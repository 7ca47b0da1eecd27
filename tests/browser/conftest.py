"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium) against the console
served by pytest-django's live server. No browser is ever downloaded."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, sync_playwright

from dlrconsole.roles import roles_sync
from tests.factories import user_in_role

CHROMIUM = os.environ.get("DLR_TEST_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery staple"
# Screenshots go here; `make screenshots` points it at docs/screenshots/ to refresh the README's.
SCREENSHOTS = os.environ.get("DLR_SCREENSHOTS", "")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.exit(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)", returncode=3)
    # Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a
    # thread with a running loop unless told this is deliberate (the tests' own setup).
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, live_server: object) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    # Every browser test also proves the pages live with their Content-Security-Policy: Chromium
    # reports each blocked script, style or eval on the console.
    refused: list[str] = []
    page.on("console", lambda note: refused.append(note.text) if "Content Security Policy" in note.text else None)
    yield page
    context.close()
    assert not refused, refused


@pytest.fixture
def roles(transactional_db: None) -> None:
    """The role groups: a transactional test's flush empties them with every other table."""
    roles_sync()


def sign_in(page: Page, base_url: str, role: str) -> None:
    user_in_role(role, f"{role}-agent", password=PASSWORD)
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(f"{role}-agent")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot of the page when asked (DLR_SCREENSHOTS=dir)."""
    if SCREENSHOTS:
        directory = Path(SCREENSHOTS)
        if not directory.is_absolute():
            directory = Path(settings.BASE_DIR) / directory
        directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(directory / f"{name}.png"), full_page=True)
