"""Error tracking (Sentry) is on only with SENTRY_DSN, and what it sends is scrubbed of phone
numbers and secrets: a realistic event of a webhook that failed goes through before_send."""

from __future__ import annotations

import json
from pathlib import Path

from dlrconsole.lib.scrub import FILTERED, PHONE, before_send, scrub_text
from tests.settings_probe import PRODUCTION, refusal_with, settings_with

EVENT = Path(__file__).parent / "fixtures" / "sentry" / "webhook_error_event.json"
NUMBERS = ("+33612345678", "06 12 34 56 78", "14155550123", "+447700900123", "4915112345678", "(415) 555-0123")
SECRETS = (
    "k7Qm2pXv9LrT4wZs", "sUp3rS3cr3tK3yV4lu3", "qL1q3bK0y1m5nZ8mP3s2a9x7VvQ=", "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN",
    "tok-9f8e7d6c5b4a", "abc123", "def456", "Pg-s3cret!", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "r3dis-pass", "django-insecure-abc",
)  # fmt: skip


def scrubbed_event() -> dict:
    return before_send(json.loads(EVENT.read_text()), {})


def test_no_phone_number_in_any_form_leaves_in_an_event():
    sent = json.dumps(scrubbed_event())
    for number in NUMBERS:
        assert number not in sent, number
    assert scrubbed_event()["extra"]["recipient"] == PHONE


def test_no_secret_leaves_in_an_event_headers_signatures_keys_or_connection_urls():
    sent = json.dumps(scrubbed_event())
    for secret in SECRETS:
        assert secret not in sent, secret
    headers = scrubbed_event()["request"]["headers"]
    for name in ("Authorization", "X-Twilio-Signature", "Webhook-Signature", "X-Dlr-Token", "Cookie"):
        assert headers[name] == FILTERED, name


def test_what_helps_to_debug_stays_in_the_event():
    event = scrubbed_event()
    assert event["exception"]["values"][0]["type"] == "ValueError"
    assert event["exception"]["values"][0]["value"] == (
        f"no message for {PHONE} on connection kannel-eu (national {PHONE})"
    )
    assert event["request"]["url"] == f"https://dlr.example.com/hooks/kannel-eu/{FILTERED}/"
    assert event["request"]["headers"]["User-Agent"] == "Kannel/1.5.0"
    assert event["request"]["headers"]["X-Request-Id"] == "0f3c1d2e4b5a69788796a5b4c3d2e1f0"
    assert event["breadcrumbs"]["values"][1]["message"] == (
        f"connecting to postgres://dlr:{FILTERED}@db.internal:5432/dlrconsole"
    )
    assert event["breadcrumbs"]["values"][3]["message"] == "sent on 2026-12-07 from 10.0.4.17, 3 receipts"
    assert event["tags"] == {"request_id": "0f3c1d2e4b5a69788796a5b4c3d2e1f0", "provider": "kannel"}


def test_headers_sent_as_pairs_are_scrubbed_too():
    assert before_send({"request": {"headers": [["Authorization", "Bearer x"], ["Accept", "*/*"]]}}, {}) == {
        "request": {"headers": [["Authorization", FILTERED], ["Accept", "*/*"]]}
    }


def test_ids_and_short_figures_keep_their_shape():
    assert scrub_text("SM1234567890abcdef took 123 ms, 42 rows") == "SM1234567890abcdef took 123 ms, 42 rows"


def test_error_tracking_is_off_without_a_dsn_and_on_with_one():
    probe = "(s.DEBUG, __import__('sentry_sdk').get_client().is_active())[1]"  # settings read first
    assert settings_with(PRODUCTION, probe) == "False"
    # A DSN on loopback's discard port: nothing is sent by merely starting.
    with_dsn = {**PRODUCTION, "SENTRY_DSN": "http://public@127.0.0.1:9/1"}
    assert settings_with(with_dsn, probe) == "True"
    assert settings_with(
        with_dsn, "s.DEBUG or __import__('sentry_sdk').get_client().options['before_send'].__module__"
    ) == ("dlrconsole.lib.scrub")


def test_a_malformed_dsn_stops_the_process_with_a_clear_message():
    assert "SENTRY_DSN is not a Sentry DSN" in refusal_with({**PRODUCTION, "SENTRY_DSN": "not-a-dsn"})
