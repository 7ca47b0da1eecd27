"""Signing in and out, changing one's password, and the session cookie's flags."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dlrconsole import roles
from tests.factories import user_in_role
from tests.settings_probe import PRODUCTION, ROOT, refusal_with, settings_with

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"
NEW_PASSWORD = "another-long-passphrase"


@pytest.fixture
def agent():
    return user_in_role(roles.SUPPORT, "agent", password=PASSWORD)


def test_the_sign_in_page_labels_its_fields(client: Client):
    page = client.get("/login/").content.decode()
    assert '<label for="id_username"' in page
    assert '<label for="id_password"' in page
    assert 'autocomplete="current-password"' in page
    assert "<title>Sign in · DLR Console</title>" in page


def test_signing_in_leads_to_the_console(client: Client, agent):
    response = client.post("/login/", {"username": "agent", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(agent.pk)


def test_signing_in_returns_to_the_page_asked_for(client: Client, agent):
    response = client.post("/login/", {"username": "agent", "password": PASSWORD, "next": "/password/"})
    assert response["Location"] == "/password/"


def test_signing_in_never_redirects_off_site(client: Client, agent):
    response = client.post("/login/", {"username": "agent", "password": PASSWORD, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_wrong_password_says_so_in_an_alert(client: Client, agent):
    response = client.post("/login/", {"username": "agent", "password": "wrong"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'role="alert"' in page
    assert "Please enter a correct username and password" in page
    assert "_auth_user_id" not in client.session


def test_a_missing_field_is_reported_on_the_field(client: Client):
    page = client.post("/login/", {"username": "agent"}).content.decode()
    assert 'aria-invalid="true"' in page
    assert "This field is required." in page


def test_an_anonymous_visitor_is_sent_to_sign_in(client: Client):
    response = client.get("/password/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/password/"


def test_signing_out_needs_a_post(client: Client, agent):
    client.force_login(agent)
    assert client.get("/logout/").status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_changing_ones_password(client: Client, agent):
    client.force_login(agent)
    page = client.get("/password/").content.decode()
    assert '<label for="id_old_password"' in page
    assert 'autocomplete="new-password"' in page
    response = client.post(
        "/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-passphrase",
            "new_password2": "another-long-passphrase",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/password/done/"
    assert client.get("/password/done/").status_code == 200
    assert get_user_model().objects.get(pk=agent.pk).check_password(NEW_PASSWORD)


def test_a_password_change_with_a_wrong_old_password_is_refused(client: Client, agent):
    client.force_login(agent)
    response = client.post(
        "/password/",
        {"old_password": "nope", "new_password1": "another-long-pass", "new_password2": "another-long-pass"},
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert get_user_model().objects.get(pk=agent.pk).check_password(PASSWORD)


def test_the_admins_password_pages_keep_the_admin_look(admin_client: Client):
    # The console's password templates are named apart so the admin keeps its own.
    used = [template.name for template in admin_client.get("/admin/password_change/").templates]
    assert "registration/password_change_form.html" in used
    assert "registration/password_change.html" not in used


def test_cookies_are_secure_when_debug_is_off():
    assert settings_with(PRODUCTION, "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE") == "True True"
    assert settings_with(PRODUCTION, "s.SESSION_COOKIE_HTTPONLY") == "True"


def test_login_throttling_is_configured_from_the_environment():
    env = {"LOGIN_FAILURE_LIMIT": "3", "LOGIN_LOCKOUT_MINUTES": "60"}
    assert settings_with(env, "s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds()") == "3 3600.0"


def test_a_tls_proxy_without_trusted_proxies_refuses_to_start():
    # Every caller would have the proxy's address: one person's failed sign-ins would lock an
    # account for everyone, and connections' source allowlists would see only the proxy.
    assert "DLR_TRUSTED_PROXIES" in refusal_with({**PRODUCTION, "DLR_TRUSTED_PROXIES": ""})
    assert settings_with({**PRODUCTION, "DLR_TRUSTED_PROXIES": "127.0.0.1/32"}, "s.DLR_TRUSTED_PROXIES") == (
        "[IPv4Network('127.0.0.1/32')]"
    )


def test_the_readmes_production_example_starts():
    readme = (ROOT / "README.md").read_text()
    example = readme.split("## Production run", 1)[1].split("```sh", 1)[1].split(".venv/bin/python", 1)[0]
    env = dict(re.findall(r"(\w+)=(\S+)", example.replace("\\\n", " ")))
    env = {name: PRODUCTION.get(name, value) if "…" in value else value for name, value in env.items()}
    env = {name: value for name, value in env.items() if name not in {"export", "DATABASE_URL", "REDIS_URL"}}
    assert settings_with(env, "bool(s.DLR_TRUSTED_PROXIES)") == "True"
