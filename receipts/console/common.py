"""What every console page shares: the request type, the permission gate, page or fragment."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def console_view(permission: str) -> Callable[[View], View]:
    """Anonymous visitors go to sign in (an htmx poll makes the whole page go there, not the
    fragment); signed-in users without `permission` get 403."""

    def decorator(view: View) -> View:
        @wraps(view)
        def gated(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                to_login = redirect_to_login(request.get_full_path())
                if request.htmx:
                    page = request.htmx.current_url_abs_path or request.get_full_path()
                    return HttpResponseClientRedirect(redirect_to_login(page).url)
                return to_login
            if not request.user.has_perm(permission):
                raise PermissionDenied(f"needs the permission {permission}")
            return view(request, *args, **kwargs)

        return gated  # type: ignore[return-value]

    return decorator


def wants_fragment(request: HtmxHttpRequest) -> bool:
    """An htmx swap asks for the fragment; a history restore (back button after the cache
    expired) and a boosted link need the whole page."""
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def render_page(
    request: HtmxHttpRequest, template: str, fragment: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """The page, or only its `fragment` partial for an htmx swap."""
    name = f"{template}#{fragment}" if wants_fragment(request) else template
    response = render(request, name, context, status=status)
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response
