"""Every URL of the project is protected unless it is on the short public list below.

Walks the whole URL tree, so pages and endpoints added later are covered without editing this
file: an anonymous GET and POST must be sent to sign in (pages), asked for credentials (API,
401/403), or refused the method (405). A new public URL needs a line in PUBLIC and a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

pytestmark = pytest.mark.django_db

PUBLIC = {
    # Providers post receipts here; each request is authenticated by the connection's
    # signature or token (receipts/views.py), not by a user.
    "webhook": "providers' receipts, signed",
    "webhook-with-token": "providers' receipts, token in the path",
    "healthz": "supervisors and load balancers: says only that the process answers",
    "readyz": "deploy gates and monitoring: ok or failing per check, nothing more",
    # 404 until DLR_METRICS_TOKEN or DLR_METRICS_ALLOW is set, then 401/403 to anyone else
    # (tests/test_metrics.py).
    "metrics": "Prometheus: a bearer token or an address allowlist",
    "login": "where everyone signs in",
    "admin:login": "the admin's own sign-in, throttled like /login/",
    "logout": "signing oneself out; POST only, no effect without a session",
    "admin:logout": "same, for the admin",
    # The API schema and its docs need a sign-in unless DLR_PUBLISH_API_SCHEMA publishes them.
}
# Sample values for URL parameters, by name; anything else gets "1".
SAMPLES = {"slug": "sample", "token": "sample", "format": "json", "url": "sample/", "app_label": "receipts"}


def named_patterns(
    patterns: list[URLPattern | URLResolver] | None = None, namespace: str = ""
) -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from named_patterns(entry.url_patterns, inner)
        elif entry.name:
            yield f"{namespace}{entry.name}", entry


def unnamed_patterns(patterns: list[URLPattern | URLResolver] | None = None) -> Iterator[str]:
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from unnamed_patterns(entry.url_patterns)
        elif not entry.name:
            yield str(entry.pattern)


def sample_url(name: str, pattern: URLPattern) -> str:
    regex = pattern.pattern.regex
    if regex.groupindex:
        return reverse(name, kwargs={group: SAMPLES.get(group, "1") for group in regex.groupindex})
    return reverse(name, args=["1"] * regex.groups)


PROTECTED = sorted({name for name, _ in named_patterns()} - set(PUBLIC))


def test_the_public_list_names_only_existing_urls():
    assert set(PUBLIC) <= {name for name, _ in named_patterns()}


def test_every_url_is_named_but_the_admins_redirects():
    # Unnamed patterns would escape the walk below. The admin's two are behind its own login:
    # the catch-all and the old-style object URL that redirects to the change page.
    assert set(unnamed_patterns()) <= {"(?P<url>.*)$", "<path:object_id>/"}


@pytest.mark.parametrize("name", PROTECTED)
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_visitors_are_refused(name, method):
    pattern = dict(named_patterns())[name]
    url = sample_url(name, pattern)
    response = getattr(Client(), method)(url)
    if response.status_code == 302:
        location = response["Location"]
        assert re.match(r"^/(admin/)?login/\?next=", location), f"{method.upper()} {url} → {location}"
    else:
        assert response.status_code in (401, 403, 405), f"{method.upper()} {url} → {response.status_code}"
