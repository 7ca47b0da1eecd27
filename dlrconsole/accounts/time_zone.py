"""The time zone a person reads the console in: kept on their profile, remembered in their
session so that a page costs no query for it, activated for each request (dlrconsole/middleware.py).
Their profile page sets it with their language (accounts/language.py)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from dlrconsole.accounts.language import SESSION_KEY as LANGUAGE_SESSION_KEY
from dlrconsole.accounts.language import language_of
from dlrconsole.accounts.models import Profile, available_time_zones, language_choices, validate_time_zone

SESSION_KEY = "time_zone"
DEFAULT = "UTC"


def time_zone_of(request: HttpRequest) -> str:
    """The signed-in person's zone, remembered in the session at sign-in (no query per page);
    read from the profile for a session from before the profile existed."""
    if not request.user.is_authenticated:
        return DEFAULT
    remembered = request.session.get(SESSION_KEY)
    if isinstance(remembered, str) and remembered in available_time_zones():
        return remembered
    name = _profile_time_zone(request.user)
    request.session[SESSION_KEY] = name
    return name


def _profile_time_zone(user: Any) -> str:
    return Profile.objects.filter(user=user).values_list("time_zone", flat=True).first() or DEFAULT


def remember_time_zone(*, request: HttpRequest | None, user: Any, **_: Any) -> None:
    """user_logged_in: the zone goes into the new session, so pages need no query for it."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = _profile_time_zone(user)


def time_zone_set(*, user: Any, name: str, language: str | None = None) -> Profile:
    """The person's time zone and, when given, their language ("" follows the browser)."""
    validate_time_zone(name)
    defaults = {"time_zone": name} if language is None else {"time_zone": name, "language": language}
    profile, _ = Profile.objects.update_or_create(user=user, defaults=defaults)
    return profile


class TimeZoneForm(forms.Form):
    time_zone = forms.CharField(max_length=64, validators=[validate_time_zone])
    language = forms.ChoiceField(choices=language_choices, required=False)


def _language_options() -> list[tuple[str, str]]:
    return [("", gettext("The browser's language")), *language_choices()]


@require_http_methods(["GET", "POST"])
@login_required
def time_zone(request: HttpRequest) -> HttpResponse:
    """The person's profile page: their time zone and their language."""
    current = time_zone_of(request)
    initial = {"time_zone": current, "language": language_of(request)}
    form = TimeZoneForm(request.POST if request.method == "POST" else initial)
    context = {
        "form": form,
        "zones": sorted(available_time_zones()),
        "current": current,
        "languages": _language_options(),
    }
    if request.method == "POST":
        if form.is_valid():
            name, language = form.cleaned_data["time_zone"], form.cleaned_data["language"]
            time_zone_set(user=request.user, name=name, language=language)
            request.session[SESSION_KEY] = name
            request.session[LANGUAGE_SESSION_KEY] = language
            # The confirmation is read in the language just chosen.
            with translation.override(language or translation.get_language_from_request(request)):
                flash.success(request, gettext("Times are now shown in %(zone)s.") % {"zone": name})
            return redirect("time-zone")
        return render(request, "registration/time_zone.html", context, status=400)
    return render(request, "registration/time_zone.html", context)
