"""Messages still pending past their flow's receipt SLA become a `no_receipt` event, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from receipts.models import OutboxEvent
from receipts.statuses import Status
from receipts.sweeps import sweep_missing_receipts
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def slas(settings):
    settings.DLR_RECEIPT_SLA_SECONDS = 3600
    settings.DLR_FLOW_RECEIPT_SLA_SECONDS = {"login-otp": 120}
    return settings


def test_pending_messages_past_their_sla_become_no_receipt_events_once(slas):
    now = timezone.now()
    otp_late = MessageFactory(flow="login-otp", status=Status.SENT, submitted_at=now - timedelta(minutes=3))
    otp_fresh = MessageFactory(flow="login-otp", status=Status.SENT, submitted_at=now - timedelta(minutes=1))
    marketing_late = MessageFactory(flow="marketing", status=Status.ACCEPTED, submitted_at=now - timedelta(hours=2))
    marketing_fresh = MessageFactory(flow="marketing", status=Status.QUEUED, submitted_at=now - timedelta(minutes=30))
    delivered = MessageFactory(flow="login-otp", status=Status.DELIVERED, submitted_at=now - timedelta(hours=5))

    assert sweep_missing_receipts(now=now) == 2
    assert sweep_missing_receipts(now=now + timedelta(seconds=30)) == 0

    events = OutboxEvent.objects.filter(kind=OutboxEvent.Kind.NO_RECEIPT)
    assert {e.message_id: e.status for e in events} == {otp_late.pk: "sent", marketing_late.pk: "accepted"}
    for message in (otp_fresh, marketing_fresh, delivered):
        message.refresh_from_db()
        assert message.no_receipt_at is None
    otp_late.refresh_from_db()
    assert otp_late.no_receipt_at == now


def test_a_message_becomes_overdue_when_its_sla_passes(slas):
    now = timezone.now()
    message = MessageFactory(flow="login-otp", status=Status.SENT, submitted_at=now - timedelta(seconds=100))
    assert sweep_missing_receipts(now=now) == 0
    assert sweep_missing_receipts(now=now + timedelta(seconds=30)) == 1
    assert OutboxEvent.objects.get().message_id == message.pk
