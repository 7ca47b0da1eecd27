"""Who may do what, everywhere: every URL of the project (walked from the URL conf, the Django
admin's included), by every caller (anonymous, viewer, support, admin, the product's API key,
a superuser), by GET and POST, against the decision table below.

A URL without a line in the table fails `test_every_url_has_a_decision`, so a new page,
endpoint or admin model ships with its decision written down. People call with a console
session, the product with its API key (it never signs in). An answer is:
- "refused": 401, 403, or a redirect to a sign-in page;
- "405": the method is not offered;
- "allowed": anything else (200, a redirect elsewhere, 400 for the empty form posted, 404).
`same` URLs are not the callers' to open: everyone must get the same answer (webhooks are
authenticated by the provider's signature, not by a user).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

from dlrconsole import roles
from retries.feed.models import FeedDelivery
from tests.factories import GENERIC_SECRET, MessageFactory, api_key_for, rule_with_steps, user_in_role
from tests.test_url_protection import named_patterns
from tests.webhooks import post_status

# Slow (every URL by every caller): left out of CI's clock-shifted second pass.
pytestmark = [pytest.mark.slow, pytest.mark.django_db]

ANON, VIEWER, SUPPORT, ADMIN, PRODUCT, ROOT = "anonymous", "viewer", "support", "admin", "product", "superuser"
CALLERS = (ANON, VIEWER, SUPPORT, ADMIN, PRODUCT, ROOT)
PEOPLE = frozenset({VIEWER, SUPPORT, ADMIN, ROOT})  # console sessions
SIGNED_IN = PEOPLE | {PRODUCT}  # sessions and API keys
EVERYONE = frozenset(CALLERS)
STAFF = frozenset({ADMIN, ROOT})


@dataclass(frozen=True)
class Spec:
    allowed: frozenset[str] = frozenset()  # answered
    no_method: frozenset[str] = frozenset()  # 405; everyone else refused
    same: bool = False  # the same answer for everyone

    def expected(self, caller: str) -> str:
        if caller in self.no_method:
            return "405"
        return "allowed" if caller in self.allowed else "refused"


def allow(*callers: str | frozenset[str]) -> Spec:
    return Spec(allowed=frozenset().union(*({c} if isinstance(c, str) else c for c in callers)))


def no_method(for_: frozenset[str] = EVERYONE) -> Spec:
    return Spec(no_method=for_)


SAME = Spec(same=True)
NOBODY = allow()

# name: (GET, POST)
PAGES: dict[str, tuple[Spec, Spec]] = {
    "home": (allow(PEOPLE), allow(PEOPLE)),
    "healthz": (SAME, SAME),
    "readyz": (SAME, SAME),
    # Prometheus' scraper is no user: a token or an address decides (tests/test_metrics.py).
    "metrics": (SAME, SAME),
    "login": (allow(EVERYONE), allow(EVERYONE)),
    "logout": (no_method(), allow(EVERYONE)),
    "password_change": (allow(PEOPLE), allow(PEOPLE)),
    "password_change_done": (allow(PEOPLE), no_method(PEOPLE)),
    "time-zone": (allow(PEOPLE), allow(PEOPLE)),
    "audit-log": (allow(STAFF), allow(STAFF)),
    # Erasing a recipient's number (a data-protection request): admins only.
    "console:erase-number": (allow(STAFF), allow(STAFF)),
    "console:overview": (allow(PEOPLE), no_method()),
    "console:search": (allow(PEOPLE), no_method()),
    "console:routes": (allow(PEOPLE), no_method()),
    "console:flows": (allow(PEOPLE), no_method()),
    "console:route-trust": (allow(PEOPLE), no_method()),
    # Pilots send messages: admins only.
    "console:pilots": (allow(ADMIN, ROOT), allow(ADMIN, ROOT)),
    "console:pilot": (allow(ADMIN, ROOT), no_method()),
    "console:pilot-cancel": (no_method(), allow(ADMIN, ROOT)),
    # The price list: admins (receipts.change_connectionprice).
    "console:prices": (allow(STAFF), no_method()),
    "console:price-new": (allow(STAFF), allow(STAFF)),
    "console:price": (allow(STAFF), allow(STAFF)),
    "console:price-delete": (no_method(), allow(STAFF)),
    "console:export": (allow(PEOPLE), no_method()),
    "console:message": (allow(SUPPORT, ADMIN, ROOT), no_method()),
    "console:resend": (allow(SUPPORT, ADMIN, ROOT), allow(SUPPORT, ADMIN, ROOT)),
    # Scheduled reports: configured by admins.
    "console:reports": (allow(STAFF), no_method()),
    "console:report-new": (allow(STAFF), allow(STAFF)),
    "console:report": (allow(STAFF), allow(STAFF)),
    "console:report-send": (no_method(), allow(STAFF)),
    "console:report-delete": (no_method(), allow(STAFF)),
    # Flows and their launch: admins (flows.change_flow).
    "console:flow-list": (allow(STAFF), no_method()),
    "console:flow-new": (allow(STAFF), allow(STAFF)),
    "console:flow": (allow(STAFF), no_method()),
    "console:flow-edit": (allow(STAFF), allow(STAFF)),
    "console:flow-kpis": (no_method(), allow(STAFF)),
    "console:flow-kpi-rules": (no_method(), allow(STAFF)),
    "console:flow-fallback-test": (no_method(), allow(STAFF)),
    "console:flow-decide": (no_method(), allow(STAFF)),
    "console:flow-checklist": (allow(STAFF), no_method()),
    # The policy editor: admins only (retries.change_rule / change_fallbackchannel).
    "console:policies": (allow(STAFF), no_method()),
    "console:rule-new": (allow(STAFF), allow(STAFF)),
    "console:rule-edit": (allow(STAFF), allow(STAFF)),
    "console:rule-move": (no_method(), allow(STAFF)),
    "console:rule-enabled": (no_method(), allow(STAFF)),
    "console:rule-delete": (allow(STAFF), allow(STAFF)),  # retries.delete_rule
    "console:rule-steps": (no_method(), allow(STAFF)),
    "console:policy-tester": (allow(STAFF), no_method()),
    "console:channels": (allow(STAFF), no_method()),
    "console:channel-new": (allow(STAFF), allow(STAFF)),
    "console:channel-edit": (allow(STAFF), allow(STAFF)),
    "console:channel-test": (no_method(), allow(STAFF)),
    # Alerts: support and admins see and act on them; admins edit rules and channels.
    "console:alerts": (allow(SUPPORT, ADMIN, ROOT), no_method()),
    "console:alert": (allow(SUPPORT, ADMIN, ROOT), no_method()),
    "console:alert-acknowledge": (no_method(), allow(SUPPORT, ADMIN, ROOT)),
    "console:alert-comment": (no_method(), allow(SUPPORT, ADMIN, ROOT)),
    "console:alert-snooze": (no_method(), allow(SUPPORT, ADMIN, ROOT)),
    "console:alert-resolve": (no_method(), allow(SUPPORT, ADMIN, ROOT)),
    "console:alert-rules": (allow(ADMIN, ROOT), no_method()),
    "console:alert-rule-new": (allow(ADMIN, ROOT), allow(ADMIN, ROOT)),
    "console:alert-rule": (allow(ADMIN, ROOT), allow(ADMIN, ROOT)),
    "console:alert-rule-delete": (no_method(), allow(ADMIN, ROOT)),
    "console:alert-channels": (allow(ADMIN, ROOT), no_method()),
    "console:alert-channel-new": (allow(ADMIN, ROOT), allow(ADMIN, ROOT)),
    "console:alert-channel": (allow(ADMIN, ROOT), allow(ADMIN, ROOT)),
    "console:alert-channel-test": (no_method(), allow(ADMIN, ROOT)),
    "console:alert-channel-delete": (no_method(), allow(ADMIN, ROOT)),
    "webhook": (SAME, SAME),
    "webhook-with-token": (SAME, SAME),
    # The API: 401 without credentials, then each action's permission (dlrconsole/roles.py).
    "api-root": (allow(SIGNED_IN), no_method(SIGNED_IN)),
    "message-list": (allow(SIGNED_IN), allow(PRODUCT, ROOT)),
    "message-detail": (allow(SUPPORT, ADMIN, PRODUCT, ROOT), no_method(SIGNED_IN)),
    "message-conversions": (no_method(SIGNED_IN), allow(PRODUCT, ROOT)),
    "message-conversions-by-reference": (no_method(SIGNED_IN), allow(PRODUCT, ROOT)),
    "rollup-list": (allow(SIGNED_IN), no_method(SIGNED_IN)),
    "feed-delivery-list": (allow(ADMIN, PRODUCT, ROOT), no_method(SIGNED_IN)),
    "feed-delivery-detail": (allow(ADMIN, PRODUCT, ROOT), no_method(SIGNED_IN)),
    # Managing endpoints: the product its own, admins every one. The sample endpoint was
    # configured by an admin, so the product key is refused on it (403, with the reason).
    "feed-delivery-replay": (no_method(SIGNED_IN), allow(ADMIN, ROOT)),
    "feed-endpoint-list": (allow(ADMIN, PRODUCT, ROOT), allow(ADMIN, PRODUCT, ROOT)),
    "feed-endpoint-detail": (allow(ADMIN, PRODUCT, ROOT), no_method(SIGNED_IN)),
    "feed-endpoint-rotate-secret": (no_method(SIGNED_IN), allow(ADMIN, ROOT)),
    "feed-endpoint-pause": (no_method(SIGNED_IN), allow(ADMIN, ROOT)),
    "feed-endpoint-resume": (no_method(SIGNED_IN), allow(ADMIN, ROOT)),
    "schema": (allow(SIGNED_IN), no_method(SIGNED_IN)),
    # A path under /api/v1/ that no route serves: 401, else a JSON 404 whatever the method.
    "api-not-found": (allow(SIGNED_IN), allow(SIGNED_IN)),
    "api-docs": (allow(PEOPLE), no_method(PEOPLE)),
    "api-redoc": (allow(PEOPLE), no_method(PEOPLE)),
    # The Django admin's own pages: staff only (admins and superusers), but its sign-in.
    "admin:login": (allow(EVERYONE), allow(EVERYONE)),
    # The admin sends anyone but staff back to its index, logging out or not.
    "admin:logout": (Spec(allowed=EVERYONE - STAFF, no_method=STAFF), allow(EVERYONE)),
    "admin:index": (allow(STAFF), allow(STAFF)),
    "admin:app_list": (allow(STAFF), allow(STAFF)),
    "admin:jsi18n": (allow(STAFF), no_method(STAFF)),
    "admin:password_change": (allow(STAFF), allow(STAFF)),
    "admin:password_change_done": (allow(STAFF), no_method(STAFF)),
    "admin:view_on_site": (allow(STAFF), allow(STAFF)),
    # No admin offers autocomplete: every call is refused.
    "admin:autocomplete": (NOBODY, no_method(STAFF)),
}

# Admin models: who may view, add, change, delete, in the admin. Admins configure (all four),
# inspect (view) and unlock sign-ins; what no admin class offers is refused to superusers too.
CONFIGURE = {"view": STAFF, "add": STAFF, "change": STAFF, "delete": STAFF}
INSPECT = {"view": STAFF, "add": frozenset(), "change": frozenset(), "delete": {ROOT}}
READ_ONLY = {"view": STAFF, "add": frozenset(), "change": frozenset(), "delete": {ROOT}}
SUPERUSERS = {"view": {ROOT}, "add": {ROOT}, "change": {ROOT}, "delete": {ROOT}}
ADMIN_MODELS: dict[str, dict[str, Any]] = {
    "receipts.connection": CONFIGURE,
    "receipts.errorcodeoverride": CONFIGURE,
    "retries.rule": CONFIGURE,
    "retries.connectionsender": CONFIGURE,
    "retries.fallbackchannel": CONFIGURE,
    "feed.productendpoint": CONFIGURE,
    "auth.user": CONFIGURE,  # users who are not superusers (see SUPERUSER_TARGET)
    # Viewed, never changed here (change views show the record read-only).
    "receipts.message": {"view": STAFF, "add": frozenset(), "change": {ROOT}, "delete": {ROOT}},
    "receipts.receipt": READ_ONLY,
    # Events are never added or dropped by hand; putting a parked one back needs `change`.
    "receipts.outboxevent": {"view": STAFF, "add": frozenset(), "change": {ROOT}, "delete": frozenset()},
    "retries.decision": READ_ONLY,
    "retries.attempt": READ_ONLY,
    "feed.feeddelivery": READ_ONLY,
    "alerts.alert": READ_ONLY,
    "auth.group": {"view": STAFF, "add": {ROOT}, "change": {ROOT}, "delete": {ROOT}},
    # API keys: made and revoked by admins, never deleted by them.
    "accounts.userapikey": {"view": STAFF, "add": STAFF, "change": STAFF, "delete": {ROOT}},
    # Sign-in throttling: admins read attempts and delete one to unlock early.
    "axes.accessattempt": {"view": STAFF, "add": frozenset(), "change": {ROOT}, "delete": STAFF},
    "axes.accesslog": {"view": STAFF, "add": frozenset(), "change": {ROOT}, "delete": {ROOT}},
    "axes.accessfailurelog": {"view": {ROOT}, "add": frozenset(), "change": {ROOT}, "delete": {ROOT}},
    # Celery beat's schedule: superusers only.
    "django_celery_beat.periodictask": SUPERUSERS,
    "django_celery_beat.intervalschedule": SUPERUSERS,
    "django_celery_beat.crontabschedule": SUPERUSERS,
    "django_celery_beat.solarschedule": SUPERUSERS,
    "django_celery_beat.clockedschedule": SUPERUSERS,
}
# Which permission each admin view checks, for GET and POST.
ADMIN_VIEWS = {
    "changelist": ("view", "view"),
    "add": ("add", "add"),
    "change": ("view", "change"),
    "delete": ("delete", "delete"),
    "history": ("view", "view"),
    "password_change": ("change", "change"),  # auth.user's password page
    "simple_history": ("view", "change"),  # one past version (the error catalog's overrides)
}
ADMIN_MODEL_URL = re.compile(r"admin:(?P<app>[a-z_]+?)_(?P<model>[a-z]+)_(?P<view>" + "|".join(ADMIN_VIEWS) + ")$")
# A superuser's account is superusers' alone: admins may look, never change.
SUPERUSER_TARGET = {
    "admin:auth_user_change": (allow(STAFF), allow(ROOT)),
    "admin:auth_user_password_change": (allow(ROOT), allow(ROOT)),
    "admin:auth_user_delete": (allow(ROOT), allow(ROOT)),
    "admin:auth_user_history": (allow(STAFF), allow(STAFF)),
}


def admin_spec(name: str) -> tuple[Spec, Spec] | None:
    match = ADMIN_MODEL_URL.match(name)
    if match is None:
        return None
    label = f"{match['app']}.{match['model']}"
    rules = ADMIN_MODELS.get(label)
    if rules is None:
        return None
    get, post = ADMIN_VIEWS[match["view"]]
    return allow(frozenset(rules[get])), allow(frozenset(rules[post]))


def decision(name: str) -> tuple[Spec, Spec] | None:
    return PAGES.get(name) or admin_spec(name)


PATTERNS = dict(named_patterns())


def test_every_url_has_a_decision():
    assert [name for name in sorted(PATTERNS) if decision(name) is None] == []


def test_every_admin_model_has_a_decision():
    assert {model._meta.label_lower for model in admin.site._registry} == set(ADMIN_MODELS)


def test_the_table_names_only_existing_urls():
    assert set(PAGES) <= set(PATTERNS)


@pytest.fixture
def callers() -> dict[str, Any]:
    users = {role: user_in_role(role, f"{role}-caller") for role in (VIEWER, SUPPORT, ADMIN)}
    users[ROOT] = get_user_model().objects.create_superuser("root-caller", "root@example.com", "pw")
    product = user_in_role(roles.PRODUCT, "product-caller")
    return {"users": users, "product_key": api_key_for(product), "product": product}


@pytest.fixture
def records(callers) -> dict[str, Any]:
    """One record of each model the admin lists, so object pages are asked about a real one."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    from alerts.models import Alert
    from receipts.flows.models import Flow
    from receipts.models import ErrorCodeOverride
    from retries.feed.models import ProductEndpoint
    from retries.feed.services import feed_publish
    from retries.models import Attempt, ConnectionSender, Decision, FallbackChannel, Rule

    now = timezone.now()
    message = MessageFactory()
    assert post_status(Client(), message, "delivered").status_code == 200
    override = ErrorCodeOverride.objects.create(provider="twilio", code="30003", reason="absent_subscriber")
    if not Rule.objects.exists():
        rule_with_steps("notify", {"action": "notify"})
    ConnectionSender.objects.create(
        connection=message.connection, kind="generic-http", config={"url": "http://127.0.0.1:9/send"}
    )
    FallbackChannel.objects.create(slug="fallback", kind="generic-http", config={"url": "http://127.0.0.1:9/send"})
    endpoint = ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    feed_publish(message=message, event_type="message.delivered", payload={})
    decision_ = Decision.objects.create(message=message, action="notify", state="recorded", why="rule", created_at=now)
    Attempt.objects.create(decision=decision_, chain_root=message, number=1, idempotency_key="k-1", due_at=now)
    Alert.objects.create(source="rule", title="look", created_at=now, message=message)
    # The flow pages are asked about a flow of the sample slug.
    Flow.objects.create(slug=message.connection.slug, name="flow", countries=["FR"], monthly_volume=1, sla_seconds=60)
    # A failed sign-in makes an access attempt; the logs are written here as axes would.
    Client().post("/login/", {"username": "someone", "password": "wrong"}, REMOTE_ADDR="192.0.2.1")
    assert AccessAttempt.objects.exists()
    seen = {"username": "someone", "ip_address": "192.0.2.1", "user_agent": "", "http_accept": "", "path_info": "/"}
    AccessLog.objects.create(**seen)
    AccessFailureLog.objects.create(**seen, locked_out=False)
    interval = IntervalSchedule.objects.create(every=10, period="seconds")
    PeriodicTask.objects.create(name="tick", task="receipts.tasks.redispatch_outbox", interval=interval)
    CrontabSchedule.objects.create()
    SolarSchedule.objects.create(event="sunrise", latitude=0, longitude=0)
    ClockedSchedule.objects.create(clocked_time=now)
    return {
        "message": message,
        "endpoint": endpoint,
        # Users' pages are asked about someone who is not a superuser (SUPERUSER_TARGET below).
        "auth.user": callers["users"][VIEWER],
        "auth.group": Group.objects.get(name=roles.VIEWER),
        "version_id": override.history.get().pk,
    }


def sample_kwargs(name: str, pattern: URLPattern, records: dict[str, Any], target: Any = None) -> dict[str, Any]:
    message = records["message"]
    values: dict[str, Any] = {
        "slug": message.connection.slug,
        "token": "not-the-token",
        "format": "json",
        "app_label": "receipts",
        "content_type_id": ContentType.objects.get_for_model(message).pk,
        "object_id": message.pk,
        "version_id": records["version_id"],
    }
    match = ADMIN_MODEL_URL.match(name)
    if match is not None:
        model = apps.get_model(match["app"], match["model"])
        obj = target or records.get(model._meta.label_lower) or model._default_manager.first()
        assert obj is not None, f"no {model._meta.label_lower} to open"
        values["object_id"] = values["id"] = obj.pk
    elif name.startswith("feed-delivery"):
        # The one delivery the records made (a made-up id answers 404 to everyone).
        values["pk"] = FeedDelivery.objects.get().pk
    elif name.startswith("feed-endpoint"):
        values["pk"] = records["endpoint"].pk
    else:
        values["pk"] = message.pk
    return values


def sample_url(name: str, pattern: URLPattern, values: dict[str, Any]) -> str:
    regex = pattern.pattern.regex
    if regex.groupindex:
        return reverse(name, kwargs={group: values.get(group, "1") for group in regex.groupindex})
    # simple_history's past-version page: (object id, version id), unnamed.
    return reverse(name, args=[values["object_id"], values["version_id"]][: regex.groups])


def client_for(caller: str, callers: dict[str, Any]) -> Client:
    if caller == PRODUCT:
        return Client(HTTP_AUTHORIZATION=f"Api-Key {callers['product_key']}")
    client = Client()
    if caller != ANON:
        client.force_login(callers["users"][caller])
    return client


def outcome(response: Any) -> str:
    if response.status_code in (401, 403):
        return "refused"
    if response.status_code == 302 and re.match(r"^/(admin/)?login/\?next=", response["Location"]):
        return "refused"
    if response.status_code == 405:
        return "405"
    assert response.status_code < 500, response.status_code
    return "allowed"


def check(name: str, url: str, specs: tuple[Spec, Spec], callers: dict[str, Any]) -> list[str]:
    wrong = []
    for method, spec in zip(("get", "post"), specs, strict=True):
        answers = {caller: getattr(client_for(caller, callers), method)(url) for caller in CALLERS}
        if spec.same:
            codes = {caller: response.status_code for caller, response in answers.items()}
            if len(set(codes.values())) != 1:
                wrong.append(f"{method.upper()} {url}: not the same for everyone: {codes}")
            continue
        for caller, response in answers.items():
            got, expected = outcome(response), spec.expected(caller)
            if got != expected:
                wrong.append(f"{method.upper()} {url} as {caller}: {got} ({response.status_code}), expected {expected}")
    return wrong


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_each_url_answers_each_caller_as_the_table_says(name, callers, records):
    specs = decision(name)
    assert specs is not None, f"{name} has no decision"
    pattern = PATTERNS[name]
    url = sample_url(name, pattern, sample_kwargs(name, pattern, records))
    wrong = check(name, url, specs, callers)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(SUPERUSER_TARGET))
def test_a_superusers_account_is_only_superusers_to_change(name, callers, records):
    pattern = PATTERNS[name]
    root = callers["users"][ROOT]
    url = sample_url(name, pattern, sample_kwargs(name, pattern, records, target=root))
    wrong = check(name, url, SUPERUSER_TARGET[name], callers)
    assert not wrong, "\n".join(wrong)
