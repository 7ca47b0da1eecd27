"""Writes on console users: create or update one in a role, make a product service account."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from dlrconsole.roles import PRODUCT, ROLES


def user_save_in_role(
    *, username: str, role: str, email: str | None = None, password: str | None = None
) -> tuple[AbstractUser, bool]:
    """Create or update `username` as a member of exactly one role group; returns (user, created).

    A password is validated by the project's validators first (ValidationError otherwise);
    None keeps the current one (a new user without one cannot sign in). `is_staff` follows
    the admin group (accounts/staff.py).
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if email is not None:
            user.email = email
        if password is not None:
            validate_password(password, user)
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.is_active = True
        user.save()
        user.groups.remove(*Group.objects.filter(name__in=set(ROLES) - {role}))
        user.groups.add(Group.objects.get(name=role))
        user.refresh_from_db()
    return user, created


def user_make_product_account(*, user: AbstractUser) -> None:
    """Give an API user what the sending product needs (dlrconsole/roles.py, PRODUCT)."""
    user.groups.add(Group.objects.get(name=PRODUCT))
