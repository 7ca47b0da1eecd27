"""API keys: stored only hashed, named, revocable, optionally expiring, shown once; each acts
as its user, so the API's permission checks are those of the user's role. Tokens made before
keys were hashed keep working, with the header clients already send."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from dlrconsole import roles
from dlrconsole.accounts.keys import api_key_create
from dlrconsole.accounts.models import UserAPIKey
from dlrconsole.audit.models import AuditEntry
from tests.factories import user_in_role

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def messages_as(header: str):
    return APIClient().get("/api/v1/messages/", HTTP_AUTHORIZATION=header)


def everything_stored() -> str:
    """Every row of every table that could hold a key, as text."""
    rows = [
        *UserAPIKey.objects.values(),
        *UserAPIKey.history.values(),
        *AuditEntry.objects.values(),
    ]
    return repr(rows)


def test_a_new_key_is_stored_only_hashed():
    key = run("create_api_key", "backend", "--create-user", "--product")
    secret = key.split(".")[1]
    assert secret not in everything_stored()
    assert key not in everything_stored()
    with connection.cursor() as cursor:
        assert "authtoken_token" not in connection.introspection.table_names(cursor)
    assert messages_as(f"Api-Key {key}").status_code == 200


def test_the_header_clients_send_today_keeps_working():
    key = run("create_api_key", "backend", "--create-user", "--product")
    assert messages_as(f"Token {key}").status_code == 200


def test_a_key_carries_its_users_role():
    viewer_key = api_key_create(user=user_in_role(roles.VIEWER, "bi"), name="bi")[1]
    plain_key = run("create_api_key", "someone", "--create-user")
    assert messages_as(f"Api-Key {viewer_key}").status_code == 200
    assert APIClient().post("/api/v1/messages/", {}, HTTP_AUTHORIZATION=f"Api-Key {viewer_key}").status_code == 403
    assert messages_as(f"Api-Key {plain_key}").status_code == 403


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Api-Key nope.nope", "Invalid or revoked API key."),
        ("Api-Key 0123456789abcdef0123456789abcdef01234567", "Invalid or revoked API key."),
        ("Api-Key", "Give the key as `Authorization: Api-Key <key>`."),
        ("Api-Key a b", "Give the key as `Authorization: Api-Key <key>`."),
        ("Api-Key " + "x" * 5000, "Invalid or revoked API key."),
    ],
)
def test_a_wrong_key_is_a_401_with_the_reason(header, reason):
    response = messages_as(header)
    assert response.status_code == 401
    assert response.json() == {"detail": reason}
    assert response["WWW-Authenticate"] == "Api-Key"


def test_a_revoked_key_is_refused_for_good():
    key = run("create_api_key", "backend", "--create-user", "--product")
    prefix = key.split(".")[0]
    assert run("revoke_api_key", prefix).startswith("revoked backend (")
    assert messages_as(f"Api-Key {key}").json() == {"detail": "Invalid or revoked API key."}
    api_key = UserAPIKey.objects.get(prefix=prefix)
    api_key.revoked = False
    with pytest.raises(Exception, match="cannot be undone"):
        api_key.save()


def test_revoking_an_unknown_prefix_says_so():
    with pytest.raises(CommandError, match="no API key with prefix 'nothing'"):
        run("revoke_api_key", "nothing")


def test_an_expired_key_is_refused_with_the_reason():
    key = run("create_api_key", "backend", "--create-user", "--product", "--expires-in-days", "30")
    assert messages_as(f"Api-Key {key}").status_code == 200
    UserAPIKey.objects.update(expiry_date=timezone.now() - timedelta(seconds=1))
    assert messages_as(f"Api-Key {key}").json() == {"detail": "This API key has expired."}


def test_a_deactivated_users_keys_are_refused():
    key = run("create_api_key", "backend", "--create-user", "--product")
    get_user_model().objects.filter(username="backend").update(is_active=False)
    assert messages_as(f"Api-Key {key}").json() == {"detail": "This API key's user is deactivated."}


def test_each_run_of_the_command_makes_another_key_under_either_name():
    first = run("create_api_key", "backend", "--create-user", "--product", "--name", "orders service")
    second = run("create_api_token", "backend")
    assert first != second
    assert messages_as(f"Api-Key {first}").status_code == messages_as(f"Api-Key {second}").status_code == 200
    assert sorted(UserAPIKey.objects.values_list("name", flat=True)) == ["backend", "orders service"]


def test_the_key_is_shown_once_when_an_admin_makes_it_in_the_admin():
    product = user_in_role(roles.PRODUCT, "backend")
    admin = Client()
    admin.force_login(user_in_role(roles.ADMIN, "boss"))
    response = admin.post(
        "/admin/accounts/userapikey/add/", {"name": "orders", "user": product.pk, "expiry_date": ""}, follow=True
    )
    assert response.status_code == 200
    key = re.search(r"is ([A-Za-z0-9]{8}\.[A-Za-z0-9]{32})", response.content.decode())[1]
    assert messages_as(f"Api-Key {key}").status_code == 200
    api_key = UserAPIKey.objects.get()
    for page in ("/admin/accounts/userapikey/", f"/admin/accounts/userapikey/{api_key.pk}/change/", "/console/audit/"):
        assert key.split(".")[1] not in admin.get(page).content.decode()


def test_an_admin_cannot_make_a_key_that_acts_as_a_superuser():
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    admin = Client()
    admin.force_login(user_in_role(roles.ADMIN, "boss"))
    response = admin.post("/admin/accounts/userapikey/add/", {"name": "mine now", "user": root.pk})
    assert response.status_code == 200
    assert "not one of the available choices" in response.content.decode()
    assert not UserAPIKey.objects.exists()


def test_an_admin_revokes_a_key_in_the_admin_and_the_audit_log_says_who():
    key = run("create_api_key", "backend", "--create-user", "--product")
    api_key = UserAPIKey.objects.get()
    admin = Client()
    admin.force_login(user_in_role(roles.ADMIN, "boss"))
    response = admin.post(
        f"/admin/accounts/userapikey/{api_key.pk}/change/", {"name": api_key.name, "revoked": "on", "expiry_date": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert messages_as(f"Api-Key {key}").status_code == 401
    created, revoked = AuditEntry.objects.filter(model="accounts.userapikey").order_by("id")
    assert (created.action, created.username) == ("created", "")
    assert (revoked.action, revoked.username) == ("changed", "boss")
    assert revoked.changes == [{"field": "revoked", "label": "revoked", "old": "no", "new": "yes"}]
    assert "hashed_key" not in repr(created.changes)
    assert admin.post(f"/admin/accounts/userapikey/{api_key.pk}/delete/", {"post": "yes"}).status_code == 403
    assert UserAPIKey.objects.filter(pk=api_key.pk).exists()


def test_the_schema_describes_the_key_header():
    key = run("create_api_key", "backend", "--create-user", "--product")
    schema = APIClient().get("/api/v1/schema/", HTTP_AUTHORIZATION=f"Api-Key {key}", HTTP_ACCEPT="application/json")
    scheme = schema.json()["components"]["securitySchemes"]["ApiKeyAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert {"ApiKeyAuth": []} in schema.json()["paths"]["/api/v1/messages/"]["get"]["security"]
