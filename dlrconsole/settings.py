"""Settings for DLR Console, read from the environment.

Secure unless told otherwise: DEBUG is off, and SECRET_KEY, DLR_SECRETS_KEYS and ALLOWED_HOSTS
must be set. Without DATABASE_URL and REDIS_URL the database is an SQLite file under ./var and
Celery tasks run eagerly in-process: the embedded demo (`make demo`), whose settings module
(dlrconsole/settings_demo.py) turns DEBUG on and makes keys of its own. Production sets
DATABASE_URL, REDIS_URL, SECRET_KEY, DLR_SECRETS_KEYS and ALLOWED_HOSTS (README, "Production").
"""

from __future__ import annotations

import ipaddress
import json
import os
from datetime import timedelta
from email.utils import getaddresses
from pathlib import Path

import dj_database_url
import django_stubs_ext
import environ
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django_guid.integrations import CeleryIntegration as CeleryGuid

from dlrconsole.queues import declared_queues

# Lets admin and form classes be subscripted with their model at runtime, as the type stubs want.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DLR_VAR_DIR", BASE_DIR / "var"))


# django-environ reads and casts the variables (URLs for e-mail and the cache, lists, numbers);
# these wrappers add what it leaves out: a typo in a boolean or a number out of range stops the
# process with the variable's name instead of silently meaning "off" or a traceback.
env = environ.Env()
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw not in TRUE_WORDS | FALSE_WORDS:
        raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {env.str(name)!r}")
    return bool(env.bool(name))


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env.list(name, default=default.split(",")) if item.strip()]


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if env.str(name, default="") == "":
        return default
    try:
        value = env.int(name)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {env.str(name)!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def env_addresses(name: str, default: str = "") -> list[tuple[str, str]]:
    """`Name <address>, address, ...` as (name, address) pairs, each address checked."""
    pairs = getaddresses([env.str(name, default=default)])
    for _name, address in pairs:
        try:
            validate_email(address)
        except ValidationError:
            raise ImproperlyConfigured(f"{name}: {address or _name!r} is not an e-mail address") from None
    return pairs


# Off unless set: a forgotten variable must never show tracebacks, settings and URL patterns.
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to at least 32 random characters, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'` (`make demo` makes its own)"
    )
# Rotation: the old key here while sessions and signed values made with it expire.
# Secrets are read as they are, not through django-environ, which takes a value that begins with
# `$` for the name of another variable (a random key may begin with one).
SECRET_KEY_FALLBACKS = [k.strip() for k in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if k.strip()]

# The keys that encrypt secrets at rest (connection secrets, send-API credentials, fallback
# channel and product-feed secrets; dlrconsole/lib/secrets_at_rest.py): Fernet keys,
# comma-separated. The first encrypts, every one decrypts, so a key is rotated by putting a new
# one first and running `manage.py rotate_secrets_key` before the old one is dropped.
DLR_SECRETS_KEYS = [k.strip() for k in os.environ.get("DLR_SECRETS_KEYS", "").split(",") if k.strip()]
if not DLR_SECRETS_KEYS:
    raise ImproperlyConfigured(
        "DLR_SECRETS_KEYS must be set to one or more Fernet keys, e.g. "
        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
    )
for _position, _key in enumerate(DLR_SECRETS_KEYS, start=1):
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            f"DLR_SECRETS_KEYS: key {_position} is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # API keys, hashed at rest (dlrconsole/accounts/models.py); before accounts, whose admin
    # replaces the library's own.
    "rest_framework_api_key",
    "django_filters",
    "django_htmx",
    # Inline partials: one template serves a console page and its htmx fragment.
    "template_partials",
    "csp",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_celery_beat",
    "axes",
    "django_guid",
    "dlrconsole.audit",
    "dlrconsole.accounts",
    "dlrconsole.console",
    "dlrconsole.simulator",
    "dlrconsole.demo",
    "dlrconsole.ops",
    "receipts",
    "receipts.rollups",
    "receipts.flows",
    "alerts.reports",
    "retries",
    "retries.feed",
    "alerts",
]

MIDDLEWARE = [
    # First, so that the webhook latency it observes is the whole stack's (dlrconsole/ops/).
    "dlrconsole.ops.middleware.WebhookLatencyMiddleware",
    # The request id (X-Request-ID if a valid one came, else a new one) for every log line of
    # the request and the Celery tasks it causes; returned in the response.
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the web process itself (no proxy rule needed), right after security.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Content-Security-Policy on every page (CONTENT_SECURITY_POLICY below).
    "dlrconsole.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of pages and of the API's texts: Accept-Language (fr-CA -> fr, else English);
    # a person's profile language overrides it on pages (ProfileLanguageMiddleware below).
    "dlrconsole.middleware.PageLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Times on pages in the signed-in person's time zone (their profile).
    "dlrconsole.middleware.TimeZoneMiddleware",
    "dlrconsole.middleware.ProfileLanguageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Who made a configuration change, for its history and the audit log (audit/).
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last: turns a sign-in refused for too many failures into the lockout page.
    "axes.middleware.AxesMiddleware",
]
# Providers' webhooks run only these, in this order (dlrconsole/webhook_lane.py): the latency
# metric, the request id, the security headers and redirect, the default language, and
# CommonMiddleware's host check.
_WEBHOOK_KEEPS = {
    "dlrconsole.ops.middleware.WebhookLatencyMiddleware",
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "dlrconsole.middleware.PageLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
}
DLR_WEBHOOK_MIDDLEWARE = [path for path in MIDDLEWARE if path in _WEBHOOK_KEEPS]

ROOT_URLCONF = "dlrconsole.urls"
WSGI_APPLICATION = "dlrconsole.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEMO_DATABASE_URL = f"sqlite:///{VAR_DIR / 'dlrconsole.sqlite3'}"
DATABASE_URL = os.environ.get("DATABASE_URL") or DEMO_DATABASE_URL
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL we understand: {exc}") from None
# Behind a pooler in transaction mode (PgBouncer's pool_mode = transaction) each transaction may
# run on another server session: no server-side cursors (Django's docs on transaction pooling),
# and no prepared statements unless the pooler keeps them (PgBouncer 1.21+ with
# max_prepared_statements). docs/SCALING.md, "Several machines".
DLR_DB_TRANSACTION_POOLING = env_bool("DLR_DB_TRANSACTION_POOLING", False)
if DLR_DB_TRANSACTION_POOLING:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
# Statements run again and again are prepared once per database connection: the webhook's
# (receipts/store.py) at once, the ORM's after psycopg has seen the same one 5 times.
DLR_DB_PREPARED_STATEMENTS = env_bool("DLR_DB_PREPARED_STATEMENTS", not DLR_DB_TRANSACTION_POOLING)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters travel apart from the SQL text (the extended protocol, which PgBouncer passes
    # in every pool mode), so the same query is the same statement whatever its values.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("server_side_binding", True)
if DLR_DB_PREPARED_STATEMENTS and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django opens psycopg connections with prepared statements off (prepare_threshold=None),
    # and psycopg then ignores even an explicit prepare=True. With Django's default client-side
    # binding nothing else could be prepared either: every ORM query was parsed and planned
    # again. Server-side binding and a threshold took a worker's decisions from ~265 to 288/s
    # at 300 receipts/s and PostgreSQL's CPU from 30 to 24 s a run (bench/decision_latency.py,
    # 2026-12-07).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is only the embedded demo: give concurrent writers (the demo feeder and the web
    # server) time to take the write lock instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    VAR_DIR.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The console and the end-user explanations are translated into these (locale/); anything else
# is answered in English. Names in their own language, as a language menu shows them.
LANGUAGES = [("en", "English"), ("fr", "Français"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Production serves what `manage.py collectstatic` gathered, compressed and under names that
# carry a hash of the content, so browsers may cache them for ever (whitenoise). DEBUG (the
# demo, development) serves the files as they are, without a collectstatic step.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
# A working day: support agents sign in once per shift, not once per fortnight.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)

# Login throttling (django-axes): the first backend refuses a locked-out username+address
# before any password is checked; ModelBackend then signs in and answers permission checks.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# LOGIN_FAILURE_LIMIT failures for one username from one address lock that pair out for
# LOGIN_LOCKOUT_MINUTES; another user, or the same user elsewhere, can still sign in. A
# success resets the count. Admins unlock early in the admin (Axes: access attempts).
# Never the username alone: anyone could then lock anyone out by typing wrong passwords. The
# address is the caller's own behind DLR_TRUSTED_PROXIES (otherwise all share the proxy's).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "dlrconsole.accounts.lockout.lockout_response"
# The same caller address the webhooks' allowlist uses (DLR_TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "dlrconsole.lib.http.client_address"

# Where providers reach this console, used to print webhook URLs (`create_connection`).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# Webhook bodies above this size are refused with 413 before they are read in full.
# Infobip batches of 100 reports are ~60 KiB; 1 MiB leaves room for any provider we read.
DLR_WEBHOOK_MAX_BYTES = env_int("DLR_WEBHOOK_MAX_BYTES", 1024 * 1024)

# Reverse proxies whose X-Forwarded-For is believed for the caller's address (comma-separated
# CIDRs): sign-in throttling and connections' allowed source addresses. Empty: REMOTE_ADDR is
# the caller.
try:
    DLR_TRUSTED_PROXIES = [ipaddress.ip_network(n, strict=False) for n in env_list("DLR_TRUSTED_PROXIES", "")]
except ValueError as exc:
    raise ImproperlyConfigured(f"DLR_TRUSTED_PROXIES must be comma-separated IP networks: {exc}") from None
if env_bool("BEHIND_TLS_PROXY", False) and not DLR_TRUSTED_PROXIES:
    # Behind a proxy every request comes from the proxy's address: sign-in lockouts (keyed on
    # username and address) would then lock an account for everyone after anyone's failures.
    raise ImproperlyConfigured(
        "BEHIND_TLS_PROXY is set but DLR_TRUSTED_PROXIES is empty: set it to the proxy's address "
        "(e.g. 127.0.0.1/32 for a proxy on this host), or every caller shares the proxy's address and "
        "anyone's failed sign-ins lock an account for everyone"
    )

# Prometheus metrics at /metrics (dlrconsole/ops/, docs/MONITORING.md) are answered only to a
# scraper that sends DLR_METRICS_TOKEN as a bearer token (401 otherwise) and calls from
# DLR_METRICS_ALLOW (comma-separated CIDRs, the caller's address as above; 403 otherwise); with
# both set both must hold. Neither set: /metrics does not exist (404).
DLR_METRICS_TOKEN = os.environ.get("DLR_METRICS_TOKEN", "")
if DLR_METRICS_TOKEN and len(DLR_METRICS_TOKEN) < 32:
    raise ImproperlyConfigured(
        "DLR_METRICS_TOKEN must be at least 32 random characters, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    )
try:
    # strict: "10.0.0.1/8" is more likely a typo than a wish to allow 10.0.0.0/8.
    DLR_METRICS_ALLOW = [ipaddress.ip_network(n, strict=True) for n in env_list("DLR_METRICS_ALLOW", "")]
except ValueError as exc:
    raise ImproperlyConfigured(f"DLR_METRICS_ALLOW must be comma-separated IP networks: {exc}") from None
# Where gunicorn's workers keep the webhook latency histogram so that a scrape sums every worker's
# (prometheus-client's multiprocess mode); the variable is read by the library itself.
_multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if _multiproc_dir and not (os.path.isdir(_multiproc_dir) and os.access(_multiproc_dir, os.W_OK)):
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR={_multiproc_dir!r} must be a writable directory")

# Outbound calls (send APIs, fallback webhooks, the product feed, SNS) never reach loopback,
# link-local, private, reserved, multicast or unspecified addresses (dlrconsole/lib/outbound.py)
# unless their network is listed here (comma-separated CIDRs), e.g. an SMS gateway on the private
# network. Empty by default; the tests and the demo list loopback, where their peers run.
try:
    DLR_OUTBOUND_ALLOWED_NETWORKS = [
        ipaddress.ip_network(n, strict=False) for n in env_list("DLR_OUTBOUND_ALLOWED_NETWORKS", "")
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"DLR_OUTBOUND_ALLOWED_NETWORKS must be comma-separated IP networks: {exc}") from None

# How long a web process may use a connection (its secrets, whether it is enabled) before
# reading it again; changes made in this process apply at once.
DLR_CONNECTION_CACHE_SECONDS = env_int("DLR_CONNECTION_CACHE_SECONDS", 5)

# How long a web process may classify errors with the admin's overrides of the error catalog
# before reading them again; changes made in this process apply at once.
DLR_ERROR_CATALOG_CACHE_SECONDS = env_int("DLR_ERROR_CATALOG_CACHE_SECONDS", 30)

# Rollups (receipts/rollups): a pass takes up to DLR_ROLLUP_BATCH changed messages at a time, for
# at most DLR_ROLLUP_PASS_SECONDS per beat run. Minute buckets serve the last hour's figures and
# are kept two days; hour buckets serve up to 30 days and are kept 90; day buckets for ever.
# A pass's own cost (its cells written, its statement's plan) is shared by its messages: under
# a backlog (batches at 17,000 receipts/s), passes of 10,000 count the same changes in a
# quarter less time than passes of 2,000 (bench/README.md, "Rollup passes"); a pass of 10,000
# commits in a few tenths of a second and holds no lock a webhook waits for.
DLR_ROLLUP_PASS_SECONDS = env_int("DLR_ROLLUP_PASS_SECONDS", 4, minimum=1, maximum=60)
DLR_ROLLUP_BATCH = env_int("DLR_ROLLUP_BATCH", 10_000, minimum=10, maximum=50_000)
DLR_ROLLUP_MINUTES_KEEP_HOURS = env_int("DLR_ROLLUP_MINUTES_KEEP_HOURS", 48, minimum=2, maximum=14 * 24)
DLR_ROLLUP_HOURS_KEEP_DAYS = env_int("DLR_ROLLUP_HOURS_KEEP_DAYS", 90, minimum=32, maximum=3660)

# AWS SNS: the only places SNS signing certificates (SigningCertURL) and subscription
# confirmations (SubscribeURL) are fetched from: Amazon SNS hosts, over HTTPS. The pattern must
# match a URL's whole netloc. Deliberately not read from the environment: widening it lets
# anyone who can serve a certificate sign receipts. Tests point it at a loopback server.
# The label after `sns.` must be a region (us-east-1, us-gov-west-1, cn-north-1): other names
# under amazonaws.com can be a customer's, e.g. the S3 bucket `sns` is sns.s3.amazonaws.com.
DLR_SNS_CERT_HOST_PATTERN = r"sns\.[a-z]{2}(-gov)?-[a-z]+-[0-9]{1,2}\.amazonaws\.com(\.cn)?"
DLR_SNS_CERT_URL_SCHEMES = ["https"]

# Missing receipts: a message still pending (queued, accepted, sent) this long after submission
# becomes a `no_receipt` event for the rules. Per flow: DLR_FLOW_RECEIPT_SLA_SECONDS as JSON,
# e.g. {"login-otp": 120}.
DLR_RECEIPT_SLA_SECONDS = env_int("DLR_RECEIPT_SLA_SECONDS", 6 * 3600)
try:
    DLR_FLOW_RECEIPT_SLA_SECONDS: dict[str, int] = json.loads(os.environ.get("DLR_FLOW_RECEIPT_SLA_SECONDS") or "{}")
except ValueError:
    raise ImproperlyConfigured("DLR_FLOW_RECEIPT_SLA_SECONDS must be a JSON object of flow → seconds") from None
if not isinstance(DLR_FLOW_RECEIPT_SLA_SECONDS, dict) or not all(
    isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in DLR_FLOW_RECEIPT_SLA_SECONDS.items()
):
    raise ImproperlyConfigured("DLR_FLOW_RECEIPT_SLA_SECONDS must map flow names to positive whole seconds")
# The country a national number typed into the console's search is read in when no country is
# given (ISO 3166 alpha-2, e.g. FR); empty: no assumption, a national number needs a hint.
DLR_DEFAULT_REGION = os.environ.get("DLR_DEFAULT_REGION", "").strip().upper()
if DLR_DEFAULT_REGION:
    import phonenumbers

    if DLR_DEFAULT_REGION not in phonenumbers.SUPPORTED_REGIONS:
        raise ImproperlyConfigured(
            f"DLR_DEFAULT_REGION must be an ISO 3166 alpha-2 region, e.g. FR; got {DLR_DEFAULT_REGION!r}"
        )
# How long a process reuses the rules it read (edits in the same process apply at once).
DLR_RULES_CACHE_SECONDS = env_int("DLR_RULES_CACHE_SECONDS", 5)
# Outbox events claimed and decided in one transaction (receipts/outbox.py): one claim and one
# read of their messages and chains for all of them, their rows written set-based at the end.
# The messages stay locked until it commits, so a receipt for one of them waits that long: 200
# events are about 120 ms (bench/profile_decisions.py: 0.88 ms per event in batches of 50, 0.59
# in batches of 200).
DLR_OUTBOX_CLAIM_BATCH = env_int("DLR_OUTBOX_CLAIM_BATCH", 200, minimum=1, maximum=500)
# Flows (receipts/flows): their receipt SLAs, launch states and routes' learned timings, read by
# every page that shows a status and by registration; kept per process this long.
DLR_FLOWS_CACHE_SECONDS = env_int("DLR_FLOWS_CACHE_SECONDS", 5)
# How long the Routes page reuses its routes' trust scores (dlrconsole/console/routes.py): each
# reads the window's latest delivered receipts, ~300 ms at 10 million messages.
DLR_TRUST_CACHE_SECONDS = env_int("DLR_TRUST_CACHE_SECONDS", 120, minimum=0, maximum=3600)
# A claimed attempt is taken over by another runner after this long without a result (its
# worker died mid-send). Well above the senders' timeouts, so a slow send is never run twice.
DLR_ATTEMPT_LEASE_SECONDS = env_int("DLR_ATTEMPT_LEASE_SECONDS", 120)
# Who is mailed when a rule raises a support alert (comma-separated); empty: alerts are only
# listed in the admin.
DLR_ALERT_EMAILS = [a.strip() for a in os.environ.get("DLR_ALERT_EMAILS", "").split(",") if a.strip()]
for _address in DLR_ALERT_EMAILS:
    try:
        validate_email(_address)
    except ValidationError:
        raise ImproperlyConfigured(f"DLR_ALERT_EMAILS: {_address!r} is not an e-mail address") from None
# E-mail (alerts, reports, the e-mail fallback, error reports to ADMINS): one URL, e.g.
# smtp+tls://user:password@smtp.example.com:587 (STARTTLS), smtp+ssl://...:465 (TLS from the
# first byte), smtp://localhost:25, consolemail:// (printed, for trials). The default is Django's:
# the SMTP server on this host.
try:
    _email = env.email_url_config(os.environ.get("EMAIL_URL", "") or "smtp://localhost:25")
except ImproperlyConfigured:
    raise ImproperlyConfigured(
        "EMAIL_URL must be an e-mail URL such as smtp+tls://user:password@smtp.example.com:587"
    ) from None
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
# Django waits for ever by default: a mail server that stops answering would hold a worker.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1, maximum=120)
# Who the mails come from; error reports to ADMINS too unless SERVER_EMAIL says otherwise.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="DLR Console <dlrconsole@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
env_addresses("DEFAULT_FROM_EMAIL", default=DEFAULT_FROM_EMAIL)
env_addresses("SERVER_EMAIL", default=SERVER_EMAIL)
# Who is mailed a server error's report (the 500s' tracebacks, settings hidden by
# dlrconsole/error_reports.py): `Name <address>, address`; empty: nobody.
ADMINS = env_addresses("ADMINS")

# A message's text is kept only to resend it; erased this long after submission.
DLR_MESSAGE_BODY_RETENTION_SECONDS = env_int("DLR_MESSAGE_BODY_RETENTION_SECONDS", 24 * 3600)

# Retention (docs/SCALING.md, "Retention"): how long each big table keeps its rows, in days; 0
# keeps them for ever. A daily beat task (dlrconsole/ops/tasks.py) deletes what is older, in
# batches of DLR_RETENTION_BATCH rows, one short transaction each, for at most
# DLR_RETENTION_PASS_SECONDS (what is left waits for the next day's run).
# - messages, with everything hung on them (decisions, attempts, outbox events, feed events and
#   deliveries, per-message alerts), by submission time; their day and hour rollups stay;
DLR_RETENTION_MESSAGES_DAYS = env_int("DLR_RETENTION_MESSAGES_DAYS", 400, minimum=0, maximum=36600)
# - receipts (the raw payloads, the biggest rows) of messages still kept, by arrival time. At
#   least 3 days: a provider retrying a receipt within its retry window must still find it to
#   be deduplicated;
DLR_RETENTION_RECEIPTS_DAYS = env_int("DLR_RETENTION_RECEIPTS_DAYS", 90, minimum=0, maximum=36600)
# - parked receipts whose message was never registered (a product that never registered it);
DLR_RETENTION_PARKED_RECEIPTS_DAYS = env_int("DLR_RETENTION_PARKED_RECEIPTS_DAYS", 7, minimum=0, maximum=36600)
# - processed outbox events that no decision points to (the rules have seen them);
DLR_RETENTION_OUTBOX_DAYS = env_int("DLR_RETENTION_OUTBOX_DAYS", 14, minimum=0, maximum=36600)
# - finished product-feed deliveries (delivered or abandoned), their POSTs, and the events left
#   without a delivery (their payloads carry the number);
DLR_RETENTION_FEED_DAYS = env_int("DLR_RETENTION_FEED_DAYS", 30, minimum=0, maximum=36600)
# - resolved alerts with their events and notifications, and test notifications.
DLR_RETENTION_ALERTS_DAYS = env_int("DLR_RETENTION_ALERTS_DAYS", 400, minimum=0, maximum=36600)
DLR_RETENTION_BATCH = env_int("DLR_RETENTION_BATCH", 5000, minimum=100, maximum=50_000)
DLR_RETENTION_PASS_SECONDS = env_int("DLR_RETENTION_PASS_SECONDS", 1800, minimum=10, maximum=6 * 3600)
# Where the purged rows are written before they are deleted (gzip JSON lines, one file per
# table and run); empty: not exported. Receipts' raw payloads carry phone numbers: protect it.
DLR_RETENTION_EXPORT_DIR = os.environ.get("DLR_RETENTION_EXPORT_DIR", "").strip()
_RETENTION_FLOORS = {
    # The shortest that makes sense: below it the product loses what it is for.
    "DLR_RETENTION_MESSAGES_DAYS": 7,  # a chain's resends and fallbacks may wait up to 7 days
    "DLR_RETENTION_RECEIPTS_DAYS": 3,  # providers retry a receipt for up to about 3 days
    "DLR_RETENTION_PARKED_RECEIPTS_DAYS": 1,  # a product registers its messages within the day
    "DLR_RETENTION_OUTBOX_DAYS": 2,
    "DLR_RETENTION_FEED_DAYS": 3,  # the Standard Webhooks schedule retries for about a day
    "DLR_RETENTION_ALERTS_DAYS": 30,
}
for _name, _floor in _RETENTION_FLOORS.items():
    if 0 < globals()[_name] < _floor:
        raise ImproperlyConfigured(f"{_name} must be 0 (keep for ever) or at least {_floor} days")
if DLR_RETENTION_MESSAGES_DAYS and not 0 < DLR_RETENTION_RECEIPTS_DAYS <= DLR_RETENTION_MESSAGES_DAYS:
    raise ImproperlyConfigured(
        "DLR_RETENTION_RECEIPTS_DAYS must be between 3 and DLR_RETENTION_MESSAGES_DAYS: receipts go with their message"
    )
if DLR_RETENTION_RECEIPTS_DAYS and not 0 < DLR_RETENTION_PARKED_RECEIPTS_DAYS <= DLR_RETENTION_RECEIPTS_DAYS:
    raise ImproperlyConfigured("DLR_RETENTION_PARKED_RECEIPTS_DAYS must be between 1 and DLR_RETENTION_RECEIPTS_DAYS")
if DLR_RETENTION_EXPORT_DIR and not (
    os.path.isabs(DLR_RETENTION_EXPORT_DIR)
    and os.path.isdir(DLR_RETENTION_EXPORT_DIR)
    and os.access(DLR_RETENTION_EXPORT_DIR, os.W_OK)
):
    raise ImproperlyConfigured(
        f"DLR_RETENTION_EXPORT_DIR={DLR_RETENTION_EXPORT_DIR!r} must be the absolute path of a writable directory"
    )


# Celery. The demo runs tasks eagerly in-process; production and the tests use Redis.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
# Keep workers' database connections between tasks (Celery's Django fixup otherwise closes them
# around every task, whatever CONN_MAX_AGE says: a new PostgreSQL session per task). Broken or
# aged connections are still replaced, by close_old_connections around each task (celery.py).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 30)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 60)
# Budgets and timeouts compose: a periodic pass (attempts, the feed) starts a request only if it
# can finish it before the soft limit less this margin, kept to record it and release what the
# pass still holds (dlrconsole/lib/outbound.py: pass_deadline).
DLR_PASS_MARGIN_SECONDS = env_int("DLR_PASS_MARGIN_SECONDS", 5)
# The product feed's timeouts for one POST (connect, then each read; the whole reply is bounded
# by their sum).
DLR_FEED_CONNECT_TIMEOUT_SECONDS = env_int("DLR_FEED_CONNECT_TIMEOUT_SECONDS", 3)
DLR_FEED_READ_TIMEOUT_SECONDS = env_int("DLR_FEED_READ_TIMEOUT_SECONDS", 15)
# The most a sender's settings may ask for, connect and read timeouts together (defaults 3 + 10).
DLR_SEND_TIMEOUT_MAX_SECONDS = env_int("DLR_SEND_TIMEOUT_MAX_SECONDS", 20)
if not 0 < CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_SOFT_TIME_LIMIT must be positive and below CELERY_TASK_TIME_LIMIT")
if min(DLR_PASS_MARGIN_SECONDS, DLR_FEED_CONNECT_TIMEOUT_SECONDS, DLR_FEED_READ_TIMEOUT_SECONDS) <= 0:
    raise ImproperlyConfigured("DLR_PASS_MARGIN_SECONDS and the feed's timeouts must be positive")
for _name, _longest in (
    ("DLR_FEED_CONNECT_TIMEOUT_SECONDS + DLR_FEED_READ_TIMEOUT_SECONDS",
     DLR_FEED_CONNECT_TIMEOUT_SECONDS + DLR_FEED_READ_TIMEOUT_SECONDS),
    ("DLR_SEND_TIMEOUT_MAX_SECONDS", DLR_SEND_TIMEOUT_MAX_SECONDS),
):  # fmt: skip
    if _longest <= 0 or _longest + DLR_PASS_MARGIN_SECONDS > CELERY_TASK_SOFT_TIME_LIMIT:
        raise ImproperlyConfigured(
            f"{_name} ({_longest} s) plus DLR_PASS_MARGIN_SECONDS ({DLR_PASS_MARGIN_SECONDS} s) must fit in "
            f"CELERY_TASK_SOFT_TIME_LIMIT ({CELERY_TASK_SOFT_TIME_LIMIT} s): a pass could never make that request"
        )
# A webhook must never wait on the broker: publishing gives up fast and the outbox sweeper
# re-dispatches whatever was not published.
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    "max_retries": 0,
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "dlrconsole")
# Decisions, the product feed and alerts each have their queue (dlrconsole/queues.py), so a slow
# product endpoint or chat webhook never delays a decision; a worker without -Q consumes them all.
CELERY_TASK_QUEUES = declared_queues(CELERY_TASK_DEFAULT_QUEUE)
CELERY_TASK_ROUTES = ("dlrconsole.queues.route_task",)
# `celery -A dlrconsole beat` runs the sweeper that publishes outbox events whose publish after
# commit was lost (broker down, process killed).
# Periodic tasks live in the database (django-celery-beat): `celery beat` installs the entries
# below at start, and a superuser can pause one or change its interval in the admin without a deploy.
# A beat sends only while it holds a lock in Redis (dlrconsole/beat.py): a second beat, started
# by mistake or kept as a standby on another host, stays idle and takes over within
# DLR_BEAT_LOCK_SECONDS of the first one stopping. The sending beat records that it is alive,
# for /readyz.
CELERY_BEAT_SCHEDULER = "dlrconsole.beat:SingleBeatScheduler"
DLR_BEAT_LOCK_SECONDS = env_int("DLR_BEAT_LOCK_SECONDS", 30, minimum=3, maximum=600)
CELERY_BEAT_SCHEDULE = {
    "outbox-redispatch": {"task": "receipts.tasks.redispatch_outbox", "schedule": 10.0},
    "missing-receipts": {"task": "receipts.tasks.sweep_missing_receipts", "schedule": 60.0},
    # Product feed: delivers what is due; the due times live in the database.
    "feed-deliver": {"task": "retries.feed.tasks.deliver_feed", "schedule": 5.0},
    # Retries and fallbacks: runs what is due; the due times live in the database.
    "attempts-run": {"task": "retries.tasks.run_due_attempts", "schedule": 5.0},
    "message-bodies-erase": {"task": "retries.tasks.erase_message_bodies", "schedule": 600.0},
    # Retention (dlrconsole/ops/retention.py): what each table keeps, once a day, in batches.
    "retention-apply": {"task": "dlrconsole.ops.tasks.apply_retention", "schedule": 24 * 3600.0},
    # Monitoring: counts what changed since the last pass into the rollups, a few seconds behind.
    "rollups-pass": {"task": "receipts.rollups.tasks.roll_up", "schedule": 5.0},
    "rollups-prune": {"task": "receipts.rollups.tasks.prune_rollups", "schedule": 3600.0},
    # Adaptive receipt SLAs: each route's recent p99 time to delivery, from the rollups.
    "route-timings": {"task": "receipts.rollups.tasks.learn_route_timings", "schedule": 300.0},
    # Scheduled reports (alerts/reports): each due period is sent once, failures tried again.
    "reports-send": {"task": "alerts.reports.tasks.send_due_reports", "schedule": 300.0},
    # Alert rules (alerts/evaluation.py): one round a minute, the rules' hold times count in minutes.
    "alerts-evaluate": {"task": "alerts.tasks.evaluate_alert_rules", "schedule": 60.0},
    # Alert notifications due (first tries are also kicked at once, retries wait their backoff).
    "alerts-notify": {"task": "alerts.tasks.send_notifications", "schedule": 15.0},
}

# The shared cache: API throttling and webhook rate limits count here, so every web process
# counts against the same limits. Redis in production (REDIS_URL), with short timeouts: a
# counter that cannot be reached lets the request through (dlrconsole/lib/rate_limit.py)
# rather than hold it. The demo, without Redis, counts per process in memory.
# CACHE_URL names another cache (e.g. a Redis of its own: redis://cache.internal:6379/1); the
# short timeouts are kept unless its query string sets others.
CACHE_URL = os.environ.get("CACHE_URL", "") or REDIS_URL
if CACHE_URL:
    try:
        _cache = env.cache_url_config(CACHE_URL)
    except ImproperlyConfigured:
        raise ImproperlyConfigured(
            f"CACHE_URL must be a cache URL such as redis://host:6379/1, got scheme {CACHE_URL.partition(':')[0]!r}"
        ) from None
    _cache.setdefault("KEY_PREFIX", "dlrconsole")
    if _cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        _cache["OPTIONS"] = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, **_cache.get("OPTIONS", {})}
    CACHES = {"default": _cache}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# API requests per user (DRF rate syntax: number/second|minute|hour|day). `read`: search,
# timelines, the feed and the schema; `write`: registering messages, as fast as the product
# sends. Over the rate: 429 with Retry-After.
DLR_API_THROTTLE_RATES = {
    "read": os.environ.get("DLR_API_READ_RATE", "600/minute"),
    "write": os.environ.get("DLR_API_WRITE_RATE", "6000/minute"),
}
for _scope, _rate in DLR_API_THROTTLE_RATES.items():
    _count, _, _period = _rate.partition("/")
    if not (_count.isdigit() and int(_count) > 0 and _period[:1] in {"s", "m", "h", "d"}):
        raise ImproperlyConfigured(f"DLR_API_{_scope.upper()}_RATE must be like 600/minute, got {_rate!r}")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # `Authorization: Api-Key <key>` (or `Token <key>`, what clients sent before keys were hashed).
        "dlrconsole.accounts.authentication.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["dlrconsole.api.throttling.UserRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "dlrconsole.api.errors.exception_handler",
}

# The API schema and its docs (/api/v1/schema/, docs/, redoc/) need a sign-in unless published:
# they map every endpoint and filter, which is nobody else's business on a private deployment.
DLR_PUBLISH_API_SCHEMA = env_bool("DLR_PUBLISH_API_SCHEMA", False)

SPECTACULAR_SETTINGS = {
    "TITLE": "DLR Console API",
    "DESCRIPTION": "Register submitted SMS, search messages and read their delivery timelines.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "dlrconsole.api.throttling.document_throttling",
    ],
    # One name per choice set, whatever field uses it (`manage.py spectacular --fail-on-warn`).
    "ENUM_NAME_OVERRIDES": {
        "MessageStatusEnum": "receipts.statuses.Status",
        "ErrorClassEnum": "receipts.reasons.ErrorClass",
        "ClassSourceEnum": "receipts.models.ClassSource",
        "FeedDeliveryStatusEnum": "retries.feed.models.FeedDelivery.Status",
        "FeedEventTypeEnum": "retries.feed.models.FeedEvent.Type",
    },
}

# Log lines: JSON objects (one a line, for a log pipeline) unless LOG_FORMAT=plain; plain by
# default with DEBUG (a person reading a terminal). Every line carries the request id of the
# request, or of the webhook whose receipt a Celery task is working on (django-guid carries it
# in the tasks' headers; receipts/outbox.py per event). The redacting filter runs on every
# handler, whatever the format.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, got {LOG_FORMAT!r}")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}")
_log_handlers = ["console", "mail_admins"] if ADMINS else ["console"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "dlrconsole.log_filters.RequestId"},
        "redact": {"()": "dlrconsole.log_filters.RedactSecrets"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "dlrconsole.log_filters.JsonLines",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "json_ensure_ascii": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact"],
        },
        # Server errors' reports, with numbers and secrets scrubbed from the whole mail.
        "mail_admins": {
            "class": "dlrconsole.error_reports.ScrubbedAdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "request_id", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Replaces Django's own handlers for these (which would log request paths unredacted).
        "django": {"handlers": _log_handlers, "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # It says at INFO that it set an id, for every request and task.
        "django_guid": {"level": "WARNING"},
    },
}

# The request id (django-guid): a valid X-Request-ID from the proxy (a UUID, with or without
# dashes, as nginx's $request_id) is kept, anything else is replaced by a new one; the id is
# returned in X-Request-ID and published with every Celery task the request causes.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": False,
    # Celery adopts LOGGING (it would otherwise replace the root logger's handlers with its own).
    "INTEGRATIONS": [CeleryGuid(use_django_logging=True)],
}

# Error tracking: on only with SENTRY_DSN. Events are scrubbed of numbers and secrets
# (dlrconsole/lib/scrub.py) before they leave; request bodies (providers' payloads) and local
# variables are never sent.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="production")
try:
    SENTRY_TRACES_SAMPLE_RATE = float(env.str("SENTRY_TRACES_SAMPLE_RATE", default="0"))
except ValueError:
    raise ImproperlyConfigured("SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1") from None
if not 0 <= SENTRY_TRACES_SAMPLE_RATE <= 1:
    raise ImproperlyConfigured(f"SENTRY_TRACES_SAMPLE_RATE must be from 0 to 1, got {SENTRY_TRACES_SAMPLE_RATE}")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    from dlrconsole.lib.scrub import before_send

    try:
        sentry_sdk.init(
            dsn=SENTRY_DSN,
            environment=SENTRY_ENVIRONMENT,
            integrations=[DjangoIntegration(), CeleryIntegration()],
            send_default_pii=False,
            max_request_body_size="never",
            include_local_variables=False,
            traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
            before_send=before_send,  # type: ignore[arg-type]
            before_send_transaction=before_send,  # type: ignore[arg-type]
        )
    except Exception as exc:  # sentry-sdk raises its own BadDsn
        raise ImproperlyConfigured(f"SENTRY_DSN is not a Sentry DSN: {type(exc).__name__}") from None

# Health (dlrconsole/ops/health.py): /readyz fails when no worker (which says so every 10 s) or
# no beat (every 10 s too) was seen for this long.
DLR_READY_WORKER_MAX_AGE_SECONDS = env_int("DLR_READY_WORKER_MAX_AGE_SECONDS", 60, minimum=15, maximum=3600)
DLR_READY_BEAT_MAX_AGE_SECONDS = env_int("DLR_READY_BEAT_MAX_AGE_SECONDS", 60, minimum=15, maximum=3600)

# HTTPS. Off with DEBUG (the demo serves plain HTTP on loopback); on by default otherwise, each
# overridable for a deployment that terminates TLS in a way these do not fit.
HTTPS = not DEBUG
if env_bool("BEHIND_TLS_PROXY", False):
    # The proxy terminates TLS and says so in X-Forwarded-Proto; it must strip the header from
    # what clients send.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
# Load balancers probe the health check over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
# Preloading is a commitment an operator makes for the whole domain (hstspreload.org), not a
# default a product may make for them: `manage.py check --deploy` is silenced on it below.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Error reports (the technical page, mails to ADMINS) hide URLs with credentials too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "dlrconsole.error_reports.ReportFilter"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# What pages may load: only this site's own scripts, styles and images (no CDN is ever used).
# Style attributes are allowed (the overview's bars are sized by one); style and script
# elements are not. htmx runs without eval and without its injected indicator styles
# (templates/base.html). The API's Swagger UI and ReDoc pages widen it for themselves
# (dlrconsole/api/urls.py). Webhooks answer JSON to machines: no policy to send there.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/hooks/"],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
