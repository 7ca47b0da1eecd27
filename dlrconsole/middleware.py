"""Middleware of the project's own."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware.locale import LocaleMiddleware
from django.utils import timezone, translation

from dlrconsole.accounts.language import language_of
from dlrconsole.accounts.time_zone import time_zone_of
from dlrconsole.lib.http import WEBHOOK_PREFIX


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp, but paths its settings exclude are left alone from the start: the library
    builds the whole policy (twice, with the report-only one) for every response before it
    looks at the exclusions, which cost 0.16 ms of a 2 ms webhook request (bench/profile_ingest.py
    under cProfile). Providers' webhooks are answered to machines, which no policy protects."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if request.path_info.startswith(tuple(settings.CONTENT_SECURITY_POLICY.get("EXCLUDE_URL_PREFIXES", ()))):
            return response
        return super().process_response(request, response)


class PageLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware (Accept-Language, fr-CA -> fr, else LANGUAGE_CODE), but not
    for providers' webhooks: they are answered to machines, so the hot path does not read the
    header, look up the catalog or patch Vary (bench/locale_middleware.py times both). A
    webhook runs in the default language, not in whatever the thread's previous request had
    activated."""

    def process_request(self, request: HttpRequest) -> None:
        if request.path_info.startswith(WEBHOOK_PREFIX):
            translation.deactivate()
            return
        super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if request.path_info.startswith(WEBHOOK_PREFIX):
            return response
        return super().process_response(request, response)


class TimeZoneMiddleware:
    """Pages show times in the signed-in person's time zone (their profile); UTC otherwise."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # The webhooks and the API have no person to read them: no session to touch.
        if request.path_info.startswith((WEBHOOK_PREFIX, "/api/")):
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(time_zone_of(request)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class ProfileLanguageMiddleware:
    """Pages in the language the signed-in person chose on their profile; without a choice,
    LocaleMiddleware's (the browser's Accept-Language). The API and the webhooks keep
    Accept-Language: a program reads them, and a shared API key is no person."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith((WEBHOOK_PREFIX, "/api/")):
            return self.get_response(request)
        code = language_of(request)
        if code:
            translation.activate(code)
            request.LANGUAGE_CODE = code
        return self.get_response(request)
