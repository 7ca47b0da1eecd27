"""Erasing a recipient's number (a data-protection request): afterwards the number is nowhere in
the database, raw payloads and JSON included; other recipients are untouched; the request is
audited with the number masked; the console asks an admin to type the number again first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from alerts.models import Alert, AlertEvent
from dlrconsole.audit.models import AuditEntry, ErasureRequest
from dlrconsole.erasure import Scrubber, number_erase, number_hash
from receipts.flows.models import Flow, Launch, LaunchDecision
from receipts.models import Message, Receipt
from retries.feed.models import FeedEvent, ProductEndpoint
from retries.models import Attempt, Pilot
from tests.factories import GENERIC_SECRET, ConnectionFactory, user_in_role
from tests.retention_world import NUMBER, message_life

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
OTHER = "+41791234567"
NATIONAL = "793026727"  # NUMBER without its country code: in every spelling of it


@pytest.fixture
def world(default_rules: None) -> None:
    ConnectionFactory(slug="infobip-eu", provider="infobip", secrets=["infobip-token-0123456789abcdef"])
    ProductEndpoint.objects.create(name="product", url="http://127.0.0.1:9/feed", secret=GENERIC_SECRET)
    message_life("erase-1", at=NOW - timedelta(days=3))
    message_life("erase-2", at=NOW - timedelta(hours=2))
    message_life("parked-1", at=NOW - timedelta(hours=1), registered=False)
    message_life("keep-1", at=NOW - timedelta(hours=2), number=OTHER)


def tables_holding(text: str) -> list[str]:
    """Every table with a row whose text (every column, JSON included) contains `text`."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT count(*) FROM "{table}" AS t WHERE t::text LIKE %s', [f"%{text}%"])  # noqa: S608
            if cursor.fetchone()[0]:
                found.append(table)
    return found


def test_the_world_holds_the_number_in_raw_payloads_feed_payloads_and_messages(world):
    holding = tables_holding(NATIONAL)
    assert {"receipts_message", "receipts_receipt", "feed_feedevent"} <= set(holding)


def test_after_erasure_the_number_is_nowhere_in_the_database_and_others_are_untouched(world):
    out = StringIO()
    call_command("erase_number", NUMBER, "--confirm", "0041 79 302 67 27", stdout=out)
    assert tables_holding(NATIONAL) == []
    # The other recipient keeps everything.
    kept = Message.objects.get(provider_message_id="keep-1")
    assert kept.recipient == OTHER
    assert kept.body
    assert "41791234567" in Receipt.objects.get(message=kept).raw_body
    assert OTHER in str(FeedEvent.objects.filter(message=kept).first().payload)
    # The erased messages keep what the figures need.
    erased = Message.objects.get(provider_message_id="erase-1")
    assert (erased.recipient, erased.body, erased.country, erased.status) == ("", "", "CH", "undelivered")
    assert not Attempt.objects.filter(chain_root=erased, outcome=Attempt.Outcome.SCHEDULED).exists()
    report = out.getvalue()
    assert "messages: 2" in report
    assert "receipts: 2" in report
    assert "parked receipts: 1" in report
    assert "feed events:" in report
    assert "alerts:" in report


def test_the_request_is_audited_with_the_number_masked_and_hashed(world):
    call_command("erase_number", NUMBER, "--confirm", NUMBER, stdout=StringIO())
    request = ErasureRequest.objects.get()
    assert request.masked_number == "+417•••••727"
    assert request.number_hash == number_hash(NUMBER)
    assert request.counts["messages"] == 2
    entry = AuditEntry.objects.get(model="audit.erasurerequest")
    assert entry.object_repr == "erasure of +417•••••727"
    assert NATIONAL not in str(entry.changes)


def test_the_command_refuses_a_confirmation_that_is_another_number(world):
    with pytest.raises(CommandError, match="not the same number"):
        call_command("erase_number", NUMBER, "--confirm", OTHER)
    assert Message.objects.filter(recipient=NUMBER).count() == 2
    assert not ErasureRequest.objects.exists()


def test_an_admin_erases_from_the_console_after_typing_the_number_again(world):
    client = Client()
    client.force_login(user_in_role("admin"))
    url = reverse("console:erase-number")
    assert client.get(url).status_code == 200
    preview = client.post(url, {"number": "+41 79 302 67 27"})
    assert preview.status_code == 200
    assert b'data-testid="found-messages">2<' in preview.content
    assert NATIONAL.encode() in preview.content  # the hidden field: admins see numbers
    wrong = client.post(url, {"number": NUMBER, "confirm": OTHER})
    assert wrong.status_code == 400
    assert Message.objects.filter(recipient=NUMBER).count() == 2
    done = client.post(url, {"number": NUMBER, "confirm": "+41 79 302 67 27"})
    assert done.status_code == 200
    assert b'data-testid="erased"' in done.content
    assert NATIONAL.encode() not in done.content
    assert tables_holding(NATIONAL) == []
    # The erased message's page still shows its fate, without a number.
    page = client.get(reverse("console:message", args=[Message.objects.get(provider_message_id="erase-1").pk]))
    assert page.status_code == 200


def test_a_bad_number_is_a_clear_400(world):
    client = Client()
    client.force_login(user_in_role("admin"))
    response = client.post(reverse("console:erase-number"), {"number": "not a number"})
    assert response.status_code == 400
    assert b"international form" in response.content


@pytest.mark.parametrize("role", ["support", "viewer"])
def test_only_admins_may_erase_a_number(role):
    client = Client()
    client.force_login(user_in_role(role))
    assert client.post(reverse("console:erase-number"), {"number": NUMBER, "confirm": NUMBER}).status_code == 403


@pytest.mark.parametrize(
    "typed",
    [
        "+41 79 302 67 27",
        "0041 79 302 67 27",
        "079 302 67 27",
        "+41 (0)79 302-67-27",
        "079.302.67.27",
        "41793026727",
        "%2B41%2079%20302%2067%2027",
    ],
)
def test_every_spelling_of_the_number_is_cut_out_of_text_and_nothing_else(typed):
    scrub = Scrubber(NUMBER)
    assert scrub.text(f"called {typed} twice; ticket 4711, other 079 123 45 67") == (
        "called [erased] twice; ticket 4711, other 079 123 45 67"
    )


def test_what_people_typed_about_any_alert_or_launch_loses_the_number(world):
    now = NOW
    rule_alert = Alert.objects.create(source="rule", title="Delivery rate low in CH", created_at=now)
    quoting = AlertEvent.objects.create(
        alert=rule_alert, kind=AlertEvent.Kind.COMMENTED, at=now, text="Customer on +41 79 302 67 27 got nothing"
    )
    unrelated = AlertEvent.objects.create(
        alert=rule_alert, kind=AlertEvent.Kind.COMMENTED, at=now, text="Swisscom says fixed at 10:40"
    )
    flow = Flow.objects.create(slug="login-otp", name="OTP", countries=["CH"], monthly_volume=1, sla_seconds=60)
    decision = LaunchDecision.objects.create(
        flow=flow, decision=Launch.GO, decided_at=now, ready=True, rationale="Tested on 079 302 67 27 and 079 123 45 67"
    )
    pilot = Pilot.objects.create(
        name="CH routes", countries=["CH"], messages_per_route=1, body="test", test_numbers=[NUMBER, OTHER]
    )
    route = ConnectionFactory(slug="ch-test", test_mode="test", test_numbers=[NUMBER, OTHER])

    request = number_erase(e164=NUMBER)

    quoting.refresh_from_db()
    unrelated.refresh_from_db()
    decision.refresh_from_db()
    pilot.refresh_from_db()
    route.refresh_from_db()
    assert route.test_numbers == [OTHER]
    assert quoting.text == "Customer on [erased] got nothing"
    assert unrelated.text == "Swisscom says fixed at 10:40"
    assert decision.rationale == "Tested on [erased] and 079 123 45 67"
    assert pilot.test_numbers == [OTHER]
    assert request.counts["alert comments"] == 1
    assert request.counts["launch decisions"] == 1
    assert request.counts["pilots' test numbers"] == 1
    assert request.counts["connections' test numbers"] == 1
    assert tables_holding(NATIONAL) == []
