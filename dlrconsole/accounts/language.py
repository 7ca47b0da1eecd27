"""The language a person reads the console in: chosen on their profile, remembered in their
session like their time zone (accounts/time_zone.py), activated for each page
(dlrconsole/middleware.py). Without a choice, Django's LocaleMiddleware follows the browser's
Accept-Language; the API always does, since a program rather than a person reads it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from dlrconsole.accounts.models import Profile

SESSION_KEY = "language"


def known_language(code: str) -> bool:
    return code in dict(settings.LANGUAGES)


def language_of(request: HttpRequest) -> str:
    """The signed-in person's chosen language, or "" to follow the browser. Remembered in the
    session at sign-in (no query per page); read from the profile for an older session."""
    if not request.user.is_authenticated:
        return ""
    remembered = request.session.get(SESSION_KEY)
    if isinstance(remembered, str) and (remembered == "" or known_language(remembered)):
        return remembered
    code = _profile_language(request.user)
    request.session[SESSION_KEY] = code
    return code


def _profile_language(user: Any) -> str:
    code = Profile.objects.filter(user=user).values_list("language", flat=True).first() or ""
    # A language since removed from settings.LANGUAGES: the browser's again.
    return code if known_language(code) else ""


def remember_language(*, request: HttpRequest | None, user: Any, **_: Any) -> None:
    """user_logged_in: the language goes into the new session, so pages need no query for it."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = _profile_language(user)
