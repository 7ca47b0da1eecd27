"""The API does what its OpenAPI schema says, and the schema says all the API does: requests
generated from the schema, answered by the app in-process, judged by every check schemathesis
has (no 5xx, only documented statuses, bodies and content types, schema-valid requests
accepted, schema-invalid ones refused, 401 without a token, 405 for undeclared methods, ...).

The budget is fixed (EXAMPLES per operation, derandomized, so CI sees the same cases on every
run, in well under a minute); `API_FUZZ_EXAMPLES=2000` explores more, with a random seed.

The webhooks (/hooks/...) are in the same schema but not fuzzed here: a request only gets past
the adapter's verify() signed over its exact bytes with the connection's provider scheme, so
schema-shaped bodies would all be the same 401. tests/test_webhook_contract.py pins every
answer of their contract, tests/test_no_500.py fuzzes signed bodies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
import schemathesis
from django.contrib.auth.models import AbstractUser
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks

from dlrconsole import roles
from retries.feed.models import FeedAttempt, FeedDelivery, ProductEndpoint
from retries.feed.services import feed_publish
from tests.factories import GENERIC_SECRET, ConnectionFactory, MessageFactory, api_key_for, user_in_role
from tests.webhooks import post_status

# Slow (a property test: ~1,350 generated requests): left out of CI's clock-shifted second pass.
pytestmark = pytest.mark.slow

ENDPOINT_ACTIONS = ("", "rotate-secret/", "pause/", "resume/")
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "100"))
NUMBER = "+33612345678"

# Read before any database exists (at collection), so as a published schema: the sign-in it
# needs otherwise is tested in tests/test_api_schema.py.
with override_settings(DLR_PUBLISH_API_SCHEMA=True):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())
load_all_checks()
ALL_CHECKS = CHECKS.get_all()
# A feed endpoint's URL is accepted only if the outbound guard allows its address and Django's
# URL validator its host (a private address, or a 254-character host, looks like any other URL
# to a schema): valid-looking ones may be refused, with the reason. Those refusals are pinned
# in tests/test_feed_endpoints_api.py; every other check still runs on the operation.
# A conversion's time is checked against its message's submission and our clock (a schema
# cannot say either), and by reference it names a message by a provider id the generator makes
# up (404): pinned in tests/test_api_conversions.py.
MAY_REFUSE_VALID_LOOKING = {
    ("POST", "/api/v1/feed/endpoints/"): ["positive_data_acceptance"],
    ("POST", "/api/v1/messages/{id}/conversions/"): ["positive_data_acceptance"],
    ("POST", "/api/v1/messages/conversions/"): ["positive_data_acceptance"],
}


@pytest.fixture
def product(db) -> AbstractUser:
    """The sending product's account: it may call every operation."""
    return user_in_role(roles.PRODUCT, "product")


@pytest.fixture
def records(db, client, product) -> dict[str, list[int]]:
    """What the generated requests may name: a connection `main`, messages with receipts (one
    failed with an error, so the class fields are set), a feed delivery with its log, to an
    endpoint the product owns (so that managing it is tried, not only refused)."""
    connection = ConnectionFactory(slug="main")
    failed = MessageFactory(connection=connection, recipient=NUMBER)
    post_status(client, failed, "undelivered", error_code="1")
    delivered = MessageFactory(connection=connection)
    post_status(client, delivered, "delivered")
    endpoint = ProductEndpoint.objects.create(
        name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET, owner=product
    )
    feed_publish(message=failed, event_type="message.failed", payload={})
    delivery = FeedDelivery.objects.get()
    FeedAttempt.objects.create(
        delivery=delivery, number=1, attempted_at=timezone.now(), status_code=502, error="bad gateway", duration_ms=9
    )
    return {
        "/api/v1/messages/{id}/": [failed.pk, delivered.pk],
        "/api/v1/messages/{id}/conversions/": [failed.pk, delivered.pk],
        "/api/v1/feed/deliveries/{id}/": [delivery.pk],
        "/api/v1/feed/deliveries/{id}/replay/": [delivery.pk],
        **{f"/api/v1/feed/endpoints/{{id}}/{action}": [endpoint.pk] for action in ENDPOINT_ACTIONS},
    }


@pytest.fixture
def token(product) -> str:
    return api_key_for(product)


@pytest.fixture
def in_process(records) -> Iterator[None]:
    """Django's test client keeps the test's database connection across requests; a WSGI call
    would close it at the end of each request, and with it the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def name_real_records(case: schemathesis.Case, records: dict[str, list[int]]) -> None:
    """A schema says what a connection slug, a phone number or an id looks like, not which
    exist: valid-looking cases name real ones, so they test more than a 400 or a 404 (which
    tests/test_api_input_limits.py covers)."""
    for part in (case.query, case.body):
        if isinstance(part, dict):
            if "connection" in part:
                part["connection"] = "main"
            for name in ("to", "recipient"):
                if name in part:
                    part[name] = NUMBER
    if case.path_parameters and "id" in case.path_parameters:
        ids = records[case.operation.path]
        case.path_parameters["id"] = ids[abs(hash(str(case.path_parameters["id"]))) % len(ids)]


def coherent_rollup_period(case: schemathesis.Case) -> None:
    """The rollups' period has rules across parameters that OpenAPI cannot state (a window or a
    from/to range, in order, of at most 400 days, at a grain still kept): valid-looking cases
    get a coherent one. Each refusal is pinned in tests/test_api_rollups.py."""
    query = case.query if isinstance(case.query, dict) else None
    if case.operation.path != "/api/v1/rollups/" or query is None:
        return
    if "from" in query or "to" in query or "grain" in query:
        now = timezone.now()
        query.pop("window", None)
        query["from"] = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        query["to"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")


@schema.include(path_regex="^/api/").parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize="API_FUZZ_EXAMPLES" not in os.environ,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_schema_says(case, records, token, in_process):
    if case.meta and case.meta.generation.mode.is_positive:
        name_real_records(case, records)
        coherent_rollup_period(case)
    excluded = MAY_REFUSE_VALID_LOOKING.get((case.method.upper(), case.operation.path), [])
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        checks=ALL_CHECKS,
        excluded_checks=[check for check in ALL_CHECKS if check.__name__ in excluded],
    )


def test_the_schema_is_valid_openapi_and_builds_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
