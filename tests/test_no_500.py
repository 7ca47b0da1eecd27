"""No input ever gets a 500: arbitrary bodies, signed or not, get 2xx, 400 or 401."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receipts.models import Connection
from tests.factories import ConnectionFactory, TwilioConnectionFactory
from tests.webhooks import generic_headers, twilio_signed

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
receipt_like = st.fixed_dictionaries(
    {
        "data": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"message_id": json_values, "status": json_values},
                optional={"timestamp": json_values, "error_code": json_values, "error_description": json_values},
            ),
        )
    }
)


@pytest.fixture
def generic() -> Connection:
    return ConnectionFactory()


@pytest.fixture
def twilio() -> Connection:
    return TwilioConnectionFactory()


@FUZZ
@given(
    payload=st.one_of(
        st.binary(max_size=300),
        json_values.map(lambda v: json.dumps(v).encode()),
        receipt_like.map(lambda v: json.dumps(v).encode()),
    )
)
def test_signed_generic_bodies_never_get_a_500(client, generic, payload):
    headers = generic_headers(generic, payload)
    response = client.post(
        f"/hooks/{generic.slug}/", data=payload, content_type=headers.pop("content-type"), headers=headers
    )
    assert response.status_code in {200, 400}, response.content


@FUZZ
@given(
    form=st.dictionaries(
        st.sampled_from(
            ["MessageSid", "MessageStatus", "ErrorCode", "RawDlrDoneDate", "To", "SmsSid", "SmsStatus", "ErrorMessage"]
        )
        | st.text(max_size=8),
        st.text(max_size=40),
        max_size=6,
    )
)
def test_signed_twilio_forms_never_get_a_500(client, twilio, form):
    url = f"http://testserver/hooks/{twilio.slug}/"
    body, headers = twilio_signed(twilio, url, form)
    response = client.post(
        f"/hooks/{twilio.slug}/", data=body, content_type=headers.pop("content-type"), headers=headers
    )
    assert response.status_code in {200, 400}, (form, response.content)


@FUZZ
@given(
    body=st.binary(max_size=200),
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "x-twilio-signature", "content-type"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
        max_size=5,
    ),
)
def test_unsigned_or_badly_signed_requests_get_401_or_400(client, generic, twilio, body, headers):
    for connection in (generic, twilio):
        response = client.generic("POST", f"/hooks/{connection.slug}/", data=body, headers=headers)
        assert response.status_code in {400, 401}, response.content


def test_twilio_get_with_query_never_500s(client, twilio):
    query = urlencode({"MessageSid": "SM1", "MessageStatus": "sent"})
    assert client.get(f"/hooks/{twilio.slug}/?{query}").status_code == 401


def test_unreachable_database_is_503_not_500():
    """A real refused connection (nothing listens on port 1), in a process of its own."""
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from django.test import Client
        client = Client()
        print(client.post("/hooks/any/", data=b"{}", content_type="application/json").status_code)
        print(client.get("/readyz").status_code)
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dlrconsole.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/unreachable",
        "ALLOWED_HOSTS": "testserver",
        "LOG_LEVEL": "CRITICAL",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=django_settings.BASE_DIR,
        check=False,
    )
    assert result.stdout.split() == ["503", "503"], result.stderr[-2000:]


def test_deeply_nested_json_is_400(client, generic):
    payload = b"[" * 100_000
    headers = generic_headers(generic, payload)
    response = client.post(
        f"/hooks/{generic.slug}/", data=payload, content_type=headers.pop("content-type"), headers=headers
    )
    assert response.status_code == 400
