#!/usr/bin/env python
"""What choosing the language costs a request, and what a webhook saves by skipping it.

Times three middlewares around the same trivial view, in this process, no database: the view
alone (the baseline), Django's LocaleMiddleware, and the project's PageLocaleMiddleware, which
skips providers' webhooks (/hooks/). Each is timed for a webhook POST without Accept-Language
(what providers send) and for a page GET with a browser's Accept-Language: the best of 7
rounds, and the Python function calls one request makes (which the machine's load does not
change, where the times on a shared machine do).

    .venv/bin/python bench/locale_middleware.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dlrconsole.settings_test")

import django  # noqa: E402

django.setup()

from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.middleware.locale import LocaleMiddleware  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from dlrconsole.middleware import PageLocaleMiddleware  # noqa: E402


def view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


def per_request_us(handler: Callable[[HttpRequest], Any], request: HttpRequest, n: int) -> float:
    handler(request)  # warm the catalogs and caches
    return min(timeit.repeat(lambda: handler(request), number=n, repeat=7)) / n * 1e6


def calls_per_request(handler: Callable[[HttpRequest], Any], request: HttpRequest) -> int:
    """Python function calls for one request: unlike the time, independent of the machine's load."""
    handler(request)
    profile = cProfile.Profile()
    profile.runcall(handler, request)
    return int(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    n = parser.parse_args().requests
    factory = RequestFactory()
    requests = {
        "webhook POST, no Accept-Language": factory.post("/hooks/twilio-main/"),
        "page GET, Accept-Language fr-CA": factory.get("/console/messages/", HTTP_ACCEPT_LANGUAGE="fr-CA,fr;q=0.9"),
    }
    handlers: dict[str, Callable[[HttpRequest], Any]] = {
        "view alone": view,
        "LocaleMiddleware": LocaleMiddleware(view),
        "PageLocaleMiddleware": PageLocaleMiddleware(view),
    }
    for name, request in requests.items():
        print(f"{name}:")
        base = 0.0
        for label, handler in handlers.items():
            took = per_request_us(handler, request, n)
            base = base or took  # the view alone comes first: the baseline
            calls = calls_per_request(handler, request)
            print(f"  {label:<22} {took:8.1f} µs  ({took / base:4.1f}x the view alone), {calls} function calls")


if __name__ == "__main__":
    main()
