"""A deployment is secure unless told otherwise: DEBUG off, keys required, HTTPS enforced,
`manage.py check --deploy` clean with production's settings, error pages that show nothing."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.urls import include, path

from tests.settings_probe import PRODUCTION, refusal_with, run_with, settings_with


def test_debug_is_off_unless_set():
    assert settings_with({k: v for k, v in PRODUCTION.items() if k != "DEBUG"}, "s.DEBUG") == "False"


@pytest.mark.parametrize("secret_key", ["", "short"])
def test_a_missing_or_short_secret_key_stops_the_process(secret_key):
    assert "SECRET_KEY must be set" in refusal_with({**PRODUCTION, "SECRET_KEY": secret_key})


@pytest.mark.parametrize(("keys", "says"), [("", "DLR_SECRETS_KEYS must be set"), ("not-a-key", "key 1 is not")])
def test_secrets_keys_are_required_and_checked(keys, says):
    assert says in refusal_with({**PRODUCTION, "DLR_SECRETS_KEYS": keys})


def test_production_redirects_to_https_and_asks_browsers_to_stay_there():
    probed = settings_with(PRODUCTION, "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS")
    assert probed == "True 31536000 True"
    assert settings_with(PRODUCTION, "s.SECURE_PROXY_SSL_HEADER") == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_check_deploy_is_clean_with_production_settings():
    result = run_with(PRODUCTION, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_when_debug_is_left_on():
    result = run_with({**PRODUCTION, "DEBUG": "1"}, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr


def broken(request):
    raise RuntimeError("boom: postgres://dlr:s3cret@db.internal/dlr")


urlpatterns = [path("broken/", broken), path("", include("dlrconsole.urls"))]


@pytest.mark.django_db
def test_an_unknown_page_is_a_plain_404_that_lists_no_url_patterns(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "This page does not exist" in page
    assert "hooks/" not in page
    assert "urlpatterns" not in page.lower()


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__, DATABASE_URL="postgres://dlr:s3cret@db.internal/dlr")
def test_a_server_error_is_a_plain_500_that_shows_no_settings_or_traceback():
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "s3cret" not in page
    assert "Traceback" not in page


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__, DEBUG=True, DATABASE_URL="postgres://dlr:s3cret@db.internal/dlr")
def test_even_the_technical_error_page_hides_urls_with_credentials():
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "DATABASE_URL" in page  # listed, as every setting is …
    assert "db.internal" not in page.split("DATABASE_URL", 1)[1][:300]  # … its value hidden


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_and_webhooks_do_not(client, admin_client):
    policy = admin_client.get("/console/")["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy.split("style-src-attr")[0]
    assert "frame-ancestors 'none'" in policy
    assert "Content-Security-Policy" not in client.post(
        "/hooks/no-such-connection/", data=b"{}", content_type="application/json"
    )


def test_the_default_region_for_national_numbers_is_an_iso_region_or_nothing():
    assert settings_with(PRODUCTION, "repr(s.DLR_DEFAULT_REGION)") == "''"  # no assumption unless configured
    assert settings_with({**PRODUCTION, "DLR_DEFAULT_REGION": "fr"}, "s.DLR_DEFAULT_REGION") == "FR"
    assert "DLR_DEFAULT_REGION must be an ISO 3166 alpha-2 region" in refusal_with(
        {**PRODUCTION, "DLR_DEFAULT_REGION": "France"}
    )
