"""The user admin as admins may use it: people and their roles, never more.

Django's own UserAdmin lets anyone with `auth.change_user` tick "superuser", grant any raw
permission or put anyone in any group, so an admin could make itself superuser. For users
who are not superusers the form carries only the fields an admin may set; a field left out
of the form is ignored however it is posted. Groups are limited to the role groups, and a
superuser's account (its password included) is not theirs to change or delete. `is_staff`
is never set by hand here: it follows the admin group (accounts/staff.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.db.models import ForeignKey, ManyToManyField, QuerySet
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.http import HttpRequest
from rest_framework_api_key.models import APIKey

from dlrconsole.accounts.models import UserAPIKey
from dlrconsole.roles import ROLE_PERMISSIONS

User = get_user_model()

ADMIN_FIELDSETS = (
    (None, {"fields": ("username", "password")}),
    ("Personal info", {"fields": ("first_name", "last_name", "email")}),
    ("Role", {"fields": ("is_active", "groups")}),
    ("Important dates", {"fields": ("last_login", "date_joined")}),
)


def _is_superuser(request: HttpRequest) -> bool:
    return bool(getattr(request.user, "is_superuser", False))


admin.site.unregister(User)


@admin.register(User)
class RoleUserAdmin(UserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "role_names", "is_active")
    list_filter = ("is_active", "groups", "is_staff", "is_superuser")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None or _is_superuser(request):
            return super().get_fieldsets(request, obj)
        return ADMIN_FIELDSETS

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField | None:
        if db_field.name == "groups" and not _is_superuser(request):
            kwargs["queryset"] = Group.objects.filter(name__in=ROLE_PERMISSIONS)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The password page asks this too: a superuser's password is a superuser's to change.
        return super().has_change_permission(request, obj) and self._may_manage(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_manage(request, obj)

    def _may_manage(self, request: HttpRequest, obj: Any) -> bool:
        return obj is None or _is_superuser(request) or not obj.is_superuser

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Role")
    def role_names(self, obj: Any) -> str:
        return ", ".join(sorted(group.name for group in obj.groups.all()))


admin.site.unregister(APIKey)  # keys without a user; this console's keys are UserAPIKey


@admin.register(UserAPIKey)
class UserAPIKeyAdmin(admin.ModelAdmin[UserAPIKey]):
    """Keys are made here or with `create_api_key`; the key is shown once, on creation.
    A key is revoked, not deleted, so the audit log keeps what it was."""

    list_display = ["prefix", "name", "user", "created", "expiry_date", "_has_expired", "revoked", "last_used_at"]
    list_filter = ["revoked", "created"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["name", "user", "prefix", "expiry_date", "revoked", "created", "last_used_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        # Another user would carry other permissions: that is another key. A revoked key
        # stays revoked (the library refuses to save it otherwise).
        frozen = ["name", "expiry_date", "revoked"] if obj.revoked else []
        return ["user", "prefix", "created", "last_used_at", *frozen]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields if obj is not None else ["name", "user", "expiry_date"]

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name == "user" and not _is_superuser(request):
            # A key acts as its user: an admin makes keys only for accounts it may manage.
            kwargs["queryset"] = User.objects.filter(is_superuser=False, is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: UserAPIKey, form: Any, change: bool) -> None:
        if change:
            obj.save()
            return
        key = UserAPIKey.objects.assign_key(obj)
        obj.save()
        messages.warning(
            request,
            f"The API key {obj.name!r} for {obj.user.get_username()} is {key} — copy it now: it is stored only "
            "hashed and will not be shown again. Callers send it as `Authorization: Api-Key <key>`.",
        )
