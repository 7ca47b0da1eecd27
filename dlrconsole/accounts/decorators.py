"""The one decorator console pages use: anonymous visitors go to sign in, signed-in users
without the permission get 403.

Never a redirect to sign in for a signed-in user: the sign-in page sends signed-in users back
to `next` (redirect_authenticated_user), which would loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required, permission_required

View = TypeVar("View", bound=Callable[..., Any])


def console_permission_required(*permissions: str) -> Callable[[View], View]:
    """e.g. @console_permission_required(roles.VIEW_TIMELINE) on a page view."""

    def decorate(view: View) -> View:
        checked = permission_required(permissions, raise_exception=True)(view)
        return login_required(checked)

    return decorate
