"""The audit log: who changed which configuration, when and how; secrets only as "changed"."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection as db
from django.test import Client

from dlrconsole import roles
from dlrconsole.audit.models import AuditEntry
from receipts.models import Connection
from retries.feed.models import ProductEndpoint
from retries.models import ConnectionSender, Rule
from tests.factories import GENERIC_SECRET, ConnectionFactory, user_in_role

pytestmark = pytest.mark.django_db

OLD_SECRET = "old-signing-secret-0123456789"
NEW_SECRET = "new-signing-secret-9876543210"
NEW_FEED_SECRET = "whsec_" + "bmV3LWZlZWQtc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture
def admin_user():
    return user_in_role(roles.ADMIN, "alice")


@pytest.fixture
def admin(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def entries(model: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(model=model).order_by("id"))


def connection_form(connection: Connection, **changes: str) -> dict[str, str]:
    return {
        "slug": connection.slug, "provider": connection.provider, "name": connection.name, "public_url": "",
        "options": "{}", "allowed_ips": "[]", "enabled": "on", "new_secrets": "", "test_mode": "off",
        "prices-TOTAL_FORMS": "0", "prices-INITIAL_FORMS": "0", **changes,
    }  # fmt: skip


def database_text() -> str:
    """Every history and audit row as text: where a leaked secret would be."""
    tables = [t for t in db.introspection.table_names() if "historical" in t or t.startswith("audit_")]
    with db.cursor() as cursor:
        rows = []
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from the schema
            rows.extend(cursor.fetchall())
    return repr(rows)


def test_an_admin_change_in_the_django_admin_appears_with_its_author_and_diff(admin):
    connection = ConnectionFactory(slug="twilio-eu", name="Twilio EU", provider="twilio", secrets=[OLD_SECRET])
    response = admin.post(
        f"/admin/receipts/connection/{connection.pk}/change/", connection_form(connection, name="Twilio Europe")
    )
    assert response.status_code == 302

    [entry] = [e for e in entries("receipts.connection") if e.action == "changed"]
    assert (entry.username, entry.user.username, entry.object_repr) == ("alice", "alice", "twilio-eu")
    assert entry.changes == [{"field": "name", "label": "name", "old": "Twilio EU", "new": "Twilio Europe"}]

    page = admin.get("/console/audit/").content.decode()
    assert "alice" in page
    assert "<del>Twilio EU</del> → <ins>Twilio Europe</ins>" in page


def test_a_secret_rotation_shows_as_changed_and_the_secret_nowhere(admin):
    connection = ConnectionFactory(slug="infobip", provider="smpp-text", secrets=[OLD_SECRET])
    response = admin.post(
        f"/admin/receipts/connection/{connection.pk}/change/", connection_form(connection, new_secrets=NEW_SECRET)
    )
    assert response.status_code == 302
    assert Connection.objects.get().secrets == [NEW_SECRET]

    [entry] = [e for e in entries("receipts.connection") if e.action == "changed"]
    assert entry.changes == [{"field": "secrets", "label": "secrets", "secret": True}]
    page = admin.get("/console/audit/").content.decode()
    assert 'changed <span class="muted">(secret, not shown)</span>' in page
    for secret in (OLD_SECRET, NEW_SECRET):
        assert secret not in page
        assert secret[:-4] not in database_text()


def test_saving_without_a_change_writes_no_entry(admin):
    connection = ConnectionFactory()
    before = AuditEntry.objects.count()
    admin.post(f"/admin/receipts/connection/{connection.pk}/change/", connection_form(connection))
    assert AuditEntry.objects.count() == before


def test_a_product_endpoint_secret_rotation_is_changed_only(admin):
    endpoint = ProductEndpoint.objects.create(name="backend", url="https://product.example/hook", secret=GENERIC_SECRET)
    form = {"name": "backend", "url": "https://product.example/hook", "secret": NEW_FEED_SECRET, "event_types": "[]",
            "enabled": "on"}  # fmt: skip
    assert admin.post(f"/admin/feed/productendpoint/{endpoint.pk}/change/", form).status_code == 302
    [entry] = [e for e in entries("feed.productendpoint") if e.action == "changed"]
    assert entry.changes == [{"field": "secret", "label": "secret", "secret": True}]
    page = admin.get("/console/audit/?model=feed.productendpoint").content.decode()
    assert NEW_FEED_SECRET.removeprefix("whsec_")[:-4] not in page
    assert GENERIC_SECRET.removeprefix("whsec_")[:-4] not in database_text()
    assert NEW_FEED_SECRET.removeprefix("whsec_")[:-4] not in database_text()


def test_a_sender_credential_is_changed_only_and_its_settings_are_diffed():
    connection = ConnectionFactory()
    sender = ConnectionSender.objects.create(
        connection=connection, kind="twilio", config={"account_sid": "AC1", "auth_token": OLD_SECRET}
    )
    sender.config = {"account_sid": "AC2", "auth_token": NEW_SECRET}
    sender.save()
    [entry] = [e for e in entries("retries.connectionsender") if e.action == "changed"]
    labels = {change["label"]: change for change in entry.changes}
    assert labels["config: auth_token"]["secret"] is True
    assert '"account_sid": "AC1"' in labels["config"]["old"]
    assert '"auth_token": "(secret)"' in labels["config"]["new"]
    assert OLD_SECRET[:-4] not in database_text()
    assert NEW_SECRET[:-4] not in database_text()
    assert ConnectionSender.objects.get().config["auth_token"] == NEW_SECRET  # the record itself untouched


def test_a_rule_edit_with_its_connections_is_one_entry(admin):
    eu, us = ConnectionFactory(slug="eu"), ConnectionFactory(slug="us")
    rule = Rule.objects.create(name="otp retry")
    rule.connections.add(eu)
    form = {
        "name": "otp retry", "position": "100", "enabled": "on", "flows": "[]", "connections": [us.pk],
        "countries": '["FR"]', "statuses": "[]", "error_classes": "[]", "reasons": "[]", "deadline_seconds": "",
        "steps-TOTAL_FORMS": "0", "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0", "steps-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    assert admin.post(f"/admin/retries/rule/{rule.pk}/change/", form).status_code == 302
    [entry] = [e for e in entries("retries.rule") if e.username == "alice"]
    changes = {change["field"]: change for change in entry.changes}
    assert changes["connections"] == {
        "field": "connections",
        "label": "connections",
        "added": ["us"],
        "removed": ["eu"],
    }
    assert changes["countries"]["new"] == '["FR"]'
    page = admin.get("/console/audit/?model=retries.rule").content.decode()
    assert "added us; removed eu" in page


def test_role_membership_changes_are_audited(admin):
    agent = user_in_role(roles.SUPPORT, "agent")
    since = AuditEntry.objects.latest("id").pk
    agent.groups.add(Group.objects.get(name=roles.ADMIN))
    changed = AuditEntry.objects.filter(model="auth.user", object_id=str(agent.pk), pk__gt=since)
    assert {change["field"] for entry in changed for change in entry.changes} == {"groups", "is_staff"}
    page = admin.get("/console/audit/?model=auth.user").content.decode()
    assert "added admin" in page
    assert "<del>no</del> → <ins>yes</ins>" in page  # staff status, set by the membership


def test_a_password_change_is_audited_without_the_hash(client):
    agent = user_in_role(roles.SUPPORT, "agent", password="correct-horse-battery-staple")
    client.force_login(agent)
    client.post(
        "/password/",
        {
            "old_password": "correct-horse-battery-staple",
            "new_password1": "a-new-long-pass",
            "new_password2": "a-new-long-pass",
        },
    )
    entry = AuditEntry.objects.filter(model="auth.user", action="changed").latest("id")
    assert entry.username == "agent"
    assert entry.changes == [{"field": "password", "label": "password", "secret": True}]
    assert get_user_model().objects.get(pk=agent.pk).password not in database_text()


def test_signing_in_is_not_a_configuration_change(client):
    user_in_role(roles.SUPPORT, "agent", password="correct-horse-battery-staple")
    before = AuditEntry.objects.count()
    assert client.post("/login/", {"username": "agent", "password": "correct-horse-battery-staple"}).status_code == 302
    assert AuditEntry.objects.count() == before


@pytest.mark.parametrize("role", [roles.SUPPORT, roles.VIEWER])
def test_support_and_viewers_are_refused_the_audit_log(role):
    client = Client()
    client.force_login(user_in_role(role))
    assert client.get("/console/audit/").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in():
    response = Client().get("/console/audit/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/console/audit/")


def test_the_log_filters_by_model_and_user(admin, admin_user):
    ConnectionFactory(slug="by-command")  # no request: made by "system"
    admin.post("/admin/retries/rule/add/", {
        "name": "alert", "position": "1", "enabled": "on", "flows": "[]", "countries": "[]", "statuses": "[]",
        "error_classes": "[]", "reasons": "[]", "action": "alert", "max_attempts": "1", "backoff_seconds": "[]",
    })  # fmt: skip
    by_alice = admin.get("/console/audit/?user=alice").content.decode()
    assert "alert" in by_alice
    assert "by-command" not in by_alice
    connections = admin.get("/console/audit/?model=receipts.connection").content.decode()
    assert "by-command" in connections
    assert "<strong>alert</strong>" not in connections
    assert '<option value="receipts.connection" selected>' in connections


def test_the_log_is_newest_first_and_paginated(admin):
    for number in range(55):
        ConnectionFactory(slug=f"c-{number:02d}")
    first = admin.get("/console/audit/?model=receipts.connection").content.decode()
    assert first.index("c-54") < first.index("c-53")
    assert "c-04" not in first
    assert "Page 1 of 2" in first
    second = admin.get("/console/audit/?model=receipts.connection&page=2").content.decode()
    assert "c-04" in second
    assert "c-54" not in second


def test_feed_deliveries_do_not_fill_the_history():
    from retries.feed.services import feed_deliver_due, feed_publish
    from tests.factories import MessageFactory

    endpoint = ProductEndpoint.objects.create(name="down", url="http://127.0.0.1:9/nothing", secret=GENERIC_SECRET)
    records = endpoint.history.count()
    feed_publish(message=MessageFactory(), event_type="message.delivered", payload={})
    feed_deliver_due()
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1
    assert endpoint.history.count() == records


def test_re_enabling_an_endpoint_is_recorded():
    from retries.feed.services import feed_endpoint_enable

    endpoint = ProductEndpoint.objects.create(
        name="gone",
        url="https://product.example/hook",
        secret=GENERIC_SECRET,
        enabled=False,
        disabled_reason="410 Gone",
    )
    feed_endpoint_enable(endpoint=endpoint)
    entry = AuditEntry.objects.filter(model="feed.productendpoint", action="changed").get()
    assert {change["field"]: (change["old"], change["new"]) for change in entry.changes} == {
        "enabled": ("no", "yes"),
        "disabled_reason": ("410 Gone", ""),
    }
