"""Console users: `create_user`, `create_api_key --product`, and staff status following the
admin group however membership changes."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client

from dlrconsole import roles
from tests.factories import user_in_role

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def fresh(username: str):
    return get_user_model().objects.get(username=username)


def groups_of(username: str) -> set[str]:
    return set(fresh(username).groups.values_list("name", flat=True))


def test_create_user_takes_the_password_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("AGENT_PASSWORD", PASSWORD)
    output = run(
        "create_user", "agent", "--role", "support", "--email", "a@example.com", "--password-env", "AGENT_PASSWORD"
    )
    assert output.strip() == "created agent: role support"
    user = fresh("agent")
    assert user.check_password(PASSWORD)
    assert (user.email, user.is_staff) == ("a@example.com", False)
    assert groups_of("agent") == {"support"}
    assert Client().post("/login/", {"username": "agent", "password": PASSWORD}).status_code == 302


def test_an_admin_can_open_the_django_admin(monkeypatch):
    monkeypatch.setenv("PW", PASSWORD)
    assert "can open /admin/" in run("create_user", "boss", "--role", "admin", "--password-env", "PW")
    assert fresh("boss").is_staff
    client = Client()
    client.force_login(fresh("boss"))
    assert client.get("/admin/receipts/connection/").status_code == 200


def test_changing_the_role_replaces_the_group_and_staff_status(monkeypatch):
    monkeypatch.setenv("PW", PASSWORD)
    run("create_user", "pat", "--role", "admin", "--password-env", "PW")
    output = run("create_user", "pat", "--role", "viewer", "--keep-password")
    assert output.strip() == "updated pat: role viewer"
    assert groups_of("pat") == {"viewer"}
    assert not fresh("pat").is_staff
    assert fresh("pat").check_password(PASSWORD)


def test_a_weak_password_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv("PW", "123")
    with pytest.raises(CommandError, match=r"password refused: .*too short"):
        run("create_user", "weak", "--role", "viewer", "--password-env", "PW")
    assert not get_user_model().objects.filter(username="weak").exists()


def test_an_unset_password_variable_is_an_error(monkeypatch):
    monkeypatch.delenv("NOT_SET", raising=False)
    with pytest.raises(CommandError, match="NOT_SET is not set"):
        run("create_user", "x", "--role", "viewer", "--password-env", "NOT_SET")


def test_without_a_terminal_the_password_is_not_prompted_for():
    with pytest.raises(CommandError, match="--password-env"):
        run("create_user", "x", "--role", "viewer")


def test_a_password_is_never_taken_from_the_command_line():
    with pytest.raises(CommandError):
        run("create_user", "x", "--role", "viewer", "--password", PASSWORD)


def test_an_unknown_role_is_refused():
    with pytest.raises(CommandError):
        run("create_user", "x", "--role", "root", "--keep-password")


def test_create_api_key_product_makes_the_service_account():
    token = run("create_api_key", "backend", "--create-user", "--product").strip()
    assert groups_of("backend") == {roles.PRODUCT}
    user = fresh("backend")
    assert user.has_perm(roles.REGISTER_MESSAGES)
    assert user.has_perm(roles.SEE_NUMBERS)
    assert not user.has_usable_password()
    assert Client().get("/api/v1/messages/", HTTP_AUTHORIZATION=f"Api-Key {token}").status_code == 200


def test_a_plain_api_key_grants_nothing():
    token = run("create_api_key", "someone", "--create-user").strip()
    assert Client().get("/api/v1/messages/", HTTP_AUTHORIZATION=f"Api-Key {token}").status_code == 403


def test_the_admin_user_form_shows_the_role_groups(admin_client: Client):
    user = user_in_role(roles.SUPPORT, "agent")
    page = admin_client.get(f"/admin/auth/user/{user.pk}/change/").content.decode()
    for role in roles.ROLES:
        assert f">{role}</option>" in page


def test_putting_a_user_in_the_admin_group_in_the_admin_grants_staff(admin_client: Client):
    user = user_in_role(roles.SUPPORT, "agent")
    admin_group, support = Group.objects.get(name=roles.ADMIN), Group.objects.get(name=roles.SUPPORT)
    form = {
        "username": "agent",
        "is_active": "on",
        "groups": [admin_group.pk, support.pk],
        "date_joined_0": "2026-11-27",
        "date_joined_1": "10:00:00",
    }
    response = admin_client.post(f"/admin/auth/user/{user.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert fresh("agent").is_staff

    form["groups"] = [support.pk]
    form["is_staff"] = "on"  # left ticked: the membership decides
    admin_client.post(f"/admin/auth/user/{user.pk}/change/", form)
    assert not fresh("agent").is_staff


def test_staff_follows_the_admin_group_from_either_side():
    user = user_in_role(roles.VIEWER, "v")
    admin_group = Group.objects.get(name=roles.ADMIN)
    admin_group.user_set.add(user)
    assert fresh("v").is_staff
    admin_group.user_set.clear()
    assert not fresh("v").is_staff
    user.groups.add(admin_group)
    assert fresh("v").is_staff
    user.groups.clear()
    assert not fresh("v").is_staff


def test_other_groups_leave_a_hand_set_staff_flag_alone():
    user = get_user_model().objects.create_user("helper", is_staff=True)
    user.groups.add(Group.objects.get(name=roles.SUPPORT))
    assert fresh("helper").is_staff


def test_a_superuser_keeps_staff_when_leaving_the_admin_group():
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    root.groups.add(Group.objects.get(name=roles.ADMIN))
    root.groups.remove(Group.objects.get(name=roles.ADMIN))
    assert fresh("root").is_staff
