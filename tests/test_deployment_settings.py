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


def test_email_comes_from_one_url_with_a_timeout():
    probed = settings_with(
        {**PRODUCTION, "EMAIL_URL": "smtp+tls://dlr:p%40ss@smtp.example.com:587"},
        "s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS, "
        "s.EMAIL_TIMEOUT",
    )
    assert probed == "django.core.mail.backends.smtp.EmailBackend smtp.example.com 587 dlr p@ss True 10"


def test_without_an_email_url_mail_goes_to_this_hosts_smtp_server():
    assert settings_with(PRODUCTION, "s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS") == "localhost 25 False"


def test_an_email_url_of_an_unknown_kind_stops_the_process():
    assert "EMAIL_URL must be an e-mail URL" in refusal_with({**PRODUCTION, "EMAIL_URL": "carrier-pigeon://x"})


def test_the_sender_and_the_admins_are_checked_addresses():
    env = {
        **PRODUCTION,
        "DEFAULT_FROM_EMAIL": "DLR <dlr@example.com>",
        "ADMINS": "Ops <ops@example.com>, b@example.com",
    }
    assert (
        settings_with(env, "s.SERVER_EMAIL, s.ADMINS")
        == "DLR <dlr@example.com> [('Ops', 'ops@example.com'), ('', 'b@example.com')]"
    )
    assert "ADMINS: 'ops' is not an e-mail address" in refusal_with({**PRODUCTION, "ADMINS": "ops"})
    assert "DEFAULT_FROM_EMAIL" in refusal_with({**PRODUCTION, "DEFAULT_FROM_EMAIL": "nobody"})


def test_admins_are_mailed_server_errors_only_when_there_are_admins():
    assert settings_with(PRODUCTION, "s.LOGGING['loggers']['django']['handlers']") == "['console']"
    with_admins = {**PRODUCTION, "ADMINS": "ops@example.com"}
    assert settings_with(with_admins, "s.LOGGING['loggers']['django']['handlers']") == "['console', 'mail_admins']"


def test_the_cache_is_redis_at_redis_url_or_at_its_own_cache_url():
    probe = "s.CACHES['default']['BACKEND'], s.CACHES['default']['LOCATION'], s.CACHES['default']['OPTIONS']"
    on_redis = settings_with({**PRODUCTION, "REDIS_URL": "redis://127.0.0.1:6379/3"}, probe, drop={"CACHE_URL"})
    assert on_redis == (
        "django.core.cache.backends.redis.RedisCache redis://127.0.0.1:6379/3 "
        "{'socket_connect_timeout': 0.5, 'socket_timeout': 0.5}"
    )
    own = settings_with({**PRODUCTION, "CACHE_URL": "redis://cache.internal:6380/1?socket_timeout=2"}, probe)
    assert own == (
        "django.core.cache.backends.redis.RedisCache redis://cache.internal:6380/1 "
        "{'socket_connect_timeout': 0.5, 'socket_timeout': 2}"
    )
    assert "CACHE_URL must be a cache URL" in refusal_with({**PRODUCTION, "CACHE_URL": "nosuch://x"})


def test_production_serves_compressed_hashed_static_files_and_logs_json():
    assert settings_with(PRODUCTION, "s.STORAGES['staticfiles']['BACKEND'], s.LOG_FORMAT") == (
        "whitenoise.storage.CompressedManifestStaticFilesStorage json"
    )
    assert "LOG_FORMAT must be json or plain" in refusal_with({**PRODUCTION, "LOG_FORMAT": "xml"})


@pytest.mark.parametrize(("name", "value"), [("DEBUG", "maybe"), ("BEHIND_TLS_PROXY", "yes please")])
def test_a_boolean_that_is_not_one_stops_the_process(name, value):
    assert f"{name} must be a boolean" in refusal_with({**PRODUCTION, name: value})


def test_a_secret_key_beginning_with_a_dollar_is_taken_as_it_is():
    key = "$" + "k" * 50
    assert settings_with({**PRODUCTION, "SECRET_KEY": key, "SECRET_KEY_FALLBACKS": key}, "s.SECRET_KEY_FALLBACKS") == (
        f"['{key}']"
    )


def test_gunicorn_as_deployed_writes_no_access_log_and_builds_none():
    # Paths carry webhook tokens and searches carry phone numbers: gunicorn's access log would
    # bypass the console's redaction. Its logger is replaced by one whose access() touches
    # nothing of the request (gunicorn built the fields anyway once a logging configuration
    # was given, a cost on every request).
    import runpy
    import subprocess
    import sys

    from django.conf import settings
    from gunicorn.glogging import Logger

    printed = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--print-config", "dlrconsole.wsgi"],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "<NoAccessLog()>" in next(line for line in printed.splitlines() if line.startswith("logger_class"))
    assert next(line for line in printed.splitlines() if line.startswith("accesslog")).endswith("= None")

    no_access_log = runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))["NoAccessLog"]
    assert issubclass(no_access_log, Logger)

    class Untouchable:
        def __getattr__(self, name: str) -> None:
            raise AssertionError(f"the access log read the request's {name}")

    no_access_log.access(no_access_log.__new__(no_access_log), Untouchable(), Untouchable(), Untouchable(), 0.1)
