"""Admins manage users and their roles in the Django admin, and nothing more: never superuser
status, a staff flag the roles do not imply, raw permissions, groups other than the roles, or
a superuser's account. The form shows only what they may set and a forged POST sets nothing
else."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client

from dlrconsole import roles
from tests.factories import user_in_role

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def fresh(user):
    return get_user_model().objects.get(pk=user.pk)


def change_form(user, **extra) -> dict:
    """What the user change form posts, plus whatever a forger adds."""
    return {
        "username": user.username,
        "is_active": "on",
        "groups": [group.pk for group in user.groups.all()],
        "date_joined_0": "2026-01-05",
        "date_joined_1": "10:00:00",
        **extra,
    }


@pytest.fixture
def admin_user():
    return user_in_role(roles.ADMIN, "boss", password=PASSWORD)


def test_an_admin_cannot_make_itself_superuser_with_a_forged_post(admin_user):
    response = signed_in(admin_user).post(
        f"/admin/auth/user/{admin_user.pk}/change/", change_form(admin_user, is_superuser="on")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not fresh(admin_user).is_superuser


def test_an_admin_cannot_grant_raw_permissions_or_staff(admin_user):
    agent = user_in_role(roles.SUPPORT, "agent")
    everything = list(Permission.objects.values_list("pk", flat=True))
    response = signed_in(admin_user).post(
        f"/admin/auth/user/{agent.pk}/change/", change_form(agent, user_permissions=everything, is_staff="on")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    agent = fresh(agent)
    assert not agent.user_permissions.exists()
    assert not agent.is_staff


def test_the_user_form_shows_an_admin_only_what_it_may_set(admin_user):
    agent = user_in_role(roles.SUPPORT, "agent")
    page = signed_in(admin_user).get(f"/admin/auth/user/{agent.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in page
    assert 'name="is_staff"' not in page
    assert 'name="user_permissions"' not in page
    assert 'name="groups"' in page


def test_an_admin_may_only_put_users_in_the_role_groups(admin_user):
    agent = user_in_role(roles.SUPPORT, "agent")
    other = Group.objects.create(name="all-powerful")
    other.permissions.set(Permission.objects.all())
    client = signed_in(admin_user)
    page = client.get(f"/admin/auth/user/{agent.pk}/change/").content.decode()
    assert ">all-powerful</option>" not in page
    for role in roles.ROLE_PERMISSIONS:
        assert f">{role}</option>" in page
    response = client.post(f"/admin/auth/user/{agent.pk}/change/", change_form(agent, groups=[other.pk]))
    assert response.status_code == 200  # the form is shown again with the refusal
    assert "not one of the available choices" in response.content.decode()
    assert set(fresh(agent).groups.values_list("name", flat=True)) == {roles.SUPPORT}


def test_an_admin_still_changes_roles_and_staff_follows(admin_user):
    agent = user_in_role(roles.SUPPORT, "agent")
    admin_group = Group.objects.get(name=roles.ADMIN)
    response = signed_in(admin_user).post(
        f"/admin/auth/user/{agent.pk}/change/", change_form(agent, groups=[admin_group.pk])
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert fresh(agent).is_staff


@pytest.mark.parametrize("page", ["change/", "password/", "delete/"])
def test_an_admin_cannot_change_a_superuser(admin_user, page):
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = signed_in(admin_user)
    assert client.post(f"/admin/auth/user/{root.pk}/{page}", {"post": "yes"}).status_code == 403
    root = fresh(root)
    assert root.is_superuser
    assert root.check_password(PASSWORD)


def test_an_admin_cannot_delete_a_superuser_through_the_bulk_action(admin_user):
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    signed_in(admin_user).post(
        "/admin/auth/user/", {"action": "delete_selected", "_selected_action": [root.pk], "post": "yes"}
    )
    assert get_user_model().objects.filter(pk=root.pk).exists()


def test_an_admin_cannot_edit_the_role_groups_permissions(admin_user):
    admin_group = Group.objects.get(name=roles.ADMIN)
    everything = list(Permission.objects.values_list("pk", flat=True))
    response = signed_in(admin_user).post(
        f"/admin/auth/group/{admin_group.pk}/change/", {"name": roles.ADMIN, "permissions": everything}
    )
    assert response.status_code == 403
    assert admin_group.permissions.count() == len(roles.ROLE_PERMISSIONS[roles.ADMIN])


def test_a_superuser_still_sets_everything():
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    agent = user_in_role(roles.SUPPORT, "agent")
    page = signed_in(root).get(f"/admin/auth/user/{agent.pk}/change/").content.decode()
    assert 'name="is_superuser"' in page
    assert 'name="user_permissions"' in page
