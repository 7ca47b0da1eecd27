"""Admins reach the Django admin; nobody else does: `is_staff` follows membership of the admin
group, whatever puts a user in or takes one out (the admin's user form, `create_user`, a
shell). A signal rather than a custom UserAdmin for that reason: every path goes through it.

Only changes that involve the admin group touch `is_staff`, so a staff flag an admin set by
hand on someone outside the role groups stays as it is. Superusers always keep it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group

from dlrconsole.roles import ADMIN


def staff_follows_admin_group(*, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **_: Any) -> None:
    """m2m_changed handler on User.groups, in both directions (user.groups / group.user_set)."""
    admin_group = Group.objects.filter(name=ADMIN).first()
    if admin_group is None:
        return
    if not reverse:
        # instance is a user; pk_set holds group ids (none for a clear).
        if action == "pre_clear":
            instance._was_admin = instance.groups.filter(pk=admin_group.pk).exists()
        elif (action == "post_clear" and getattr(instance, "_was_admin", False)) or (
            action in ("post_add", "post_remove") and admin_group.pk in (pk_set or set())
        ):
            _set_staff(instance)
    elif instance.pk == admin_group.pk:
        # instance is the admin group; pk_set holds user ids (none for a clear).
        if action == "pre_clear":
            instance._cleared_user_ids = set(instance.user_set.values_list("pk", flat=True))
        elif action == "post_clear":
            _set_staff_of(getattr(instance, "_cleared_user_ids", set()))
        elif action in ("post_add", "post_remove"):
            _set_staff_of(pk_set or set())


def _set_staff_of(user_ids: set[int]) -> None:
    for user in get_user_model().objects.filter(pk__in=user_ids):
        _set_staff(user)


def _set_staff(user: AbstractUser) -> None:
    is_staff = user.is_superuser or user.groups.filter(name=ADMIN).exists()
    if user.is_staff != is_staff:
        user.is_staff = is_staff
        # A save, not an update: the change is recorded in the user's history (audit log).
        user.save(update_fields=["is_staff"])
