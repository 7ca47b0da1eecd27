"""Who may call which API action: each viewset maps its actions to the permissions they need.

The capabilities are those of dlrconsole/roles.py, checked with `has_perms`, never by group. An
action a viewset does not list is refused, so a new action cannot ship open by accident.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


class ActionPermissions(BasePermission):
    """Needs `view.action_permissions`: {action: (permission, ...)}; the user must hold them all.

    Unauthenticated callers get 401 (DRF asks for a token), signed-in ones without the
    permissions 403.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        method = (request.method or "").lower()
        action_map = getattr(view, "action_map", None)
        if method != "options" and action_map is not None and method not in action_map:
            return True  # no such action on this route: DRF answers 405
        needed = required_permissions(view)
        return needed is not None and user.has_perms(needed)


def required_permissions(view: APIView) -> tuple[str, ...] | None:
    table: Mapping[str, tuple[str, ...]] = getattr(view, "action_permissions", {})
    # OPTIONS (DRF's "metadata") describes the list action: it needs what listing needs.
    action = getattr(view, "action", None)
    return table.get("list") if action == "metadata" else table.get(action or "")


class SignedInUnlessPublished(BasePermission):
    """The API schema: anyone signed in (session or API key), everyone with DLR_PUBLISH_API_SCHEMA."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(settings.DLR_PUBLISH_API_SCHEMA or (request.user and request.user.is_authenticated))
