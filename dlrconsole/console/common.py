"""What every console page shares: the request type, the permission gate, page or fragment."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from dlrconsole.accounts.decorators import console_permission_required


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def console_view(permission: str) -> Callable[[View], View]:
    """The console's permission gate (dlrconsole.accounts.decorators) that also knows htmx: an
    htmx poll after the session expired sends the whole page to sign in, not the sign-in form
    into a fragment."""

    def decorator(view: View) -> View:
        gated = console_permission_required(permission)(view)

        @wraps(view)
        def htmx_aware(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.htmx and not request.user.is_authenticated:
                page = request.htmx.current_url_abs_path or request.get_full_path()
                return HttpResponseClientRedirect(redirect_to_login(page).url)
            return gated(request, *args, **kwargs)

        return htmx_aware  # type: ignore[return-value]

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
