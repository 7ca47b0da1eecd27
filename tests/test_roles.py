"""The role groups exist after migrate and carry exactly their capabilities."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from dlrconsole import roles

pytestmark = pytest.mark.django_db


def _user_in(role: str):
    user = get_user_model().objects.create_user(username=f"u-{role}", password="x")
    user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)  # a fresh instance: no cached permissions


def test_every_role_group_holds_every_permission_it_names() -> None:
    for role, names in roles.ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == set(names), role


def test_viewer_sees_dashboards_and_exports_with_masked_numbers() -> None:
    viewer = _user_in(roles.VIEWER)
    assert viewer.has_perm(roles.USE_CONSOLE)
    assert viewer.has_perm(roles.EXPORT)
    assert not viewer.has_perm(roles.VIEW_TIMELINE)
    assert not viewer.has_perm(roles.RESEND)
    assert not roles.can_see_numbers(viewer)
    assert roles.user_role(viewer) == roles.VIEWER


def test_support_searches_opens_timelines_and_resends_but_configures_nothing() -> None:
    support = _user_in(roles.SUPPORT)
    assert all(support.has_perm(p) for p in (roles.VIEW_TIMELINE, roles.RESEND, roles.SEE_NUMBERS))
    assert not support.has_perm("receipts.change_connection")
    assert not support.has_perm(roles.VIEW_AUDIT_LOG)


def test_admin_configures_and_reads_the_audit_log() -> None:
    admin = _user_in(roles.ADMIN)
    assert admin.has_perm("receipts.change_connection")
    assert admin.has_perm("retries.add_rule")
    assert admin.has_perm("auth.change_user")
    assert admin.has_perm(roles.VIEW_AUDIT_LOG)
    assert admin.has_perm(roles.RESEND)
