"""The search filters a dashboard figure's link sets: one short test each."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.utils import timezone

from receipts.filters import MessageFilter
from receipts.models import Message
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def found(query: str) -> set[str]:
    filterset = MessageFilter(QueryDict(query), queryset=Message.objects.all())
    assert filterset.is_valid(), filterset.errors
    return set(filterset.qs.values_list("provider_message_id", flat=True))


def test_status_group_selects_delivered_failed_or_pending() -> None:
    for status in ("delivered", "undelivered", "expired", "sent", "unknown"):
        MessageFactory(provider_message_id=status, status=status)
    assert found("status_group=delivered") == {"delivered"}
    assert found("status_group=failed") == {"undelivered", "expired"}
    assert found("status_group=pending") == {"sent", "unknown"}


def test_network_matches_exactly() -> None:
    MessageFactory(provider_message_id="orange", network="20801")
    MessageFactory(provider_message_id="none")
    assert found("network=20801") == {"orange"}


def test_missing_receipt_is_a_report_without_a_final_status_since() -> None:
    MessageFactory(provider_message_id="missing", status="sent", no_receipt_at=timezone.now())
    MessageFactory(provider_message_id="late", status="delivered", no_receipt_at=timezone.now())
    MessageFactory(provider_message_id="fine", status="sent")
    assert found("missing_receipt=true") == {"missing"}
    assert found("missing_receipt=false") == {"late", "fine"}


def test_resend_selects_the_messages_of_a_chain_after_the_first() -> None:
    original = MessageFactory(provider_message_id="original")
    MessageFactory(provider_message_id="resend", chain_root=original)
    assert found("resend=true") == {"resend"}
    assert found("resend=false") == {"original"}


def test_unset_selects_messages_without_that_value() -> None:
    MessageFactory(provider_message_id="bare", network="", flow="")
    MessageFactory(provider_message_id="full", network="20801", flow="login-otp")
    assert found("unset=network&unset=flow") == {"bare"}


def test_a_wrong_value_is_refused() -> None:
    filterset = MessageFilter(QueryDict("status_group=lost&missing_receipt=yes&unset=body"))
    assert not filterset.is_valid()
    assert set(filterset.errors) == {"status_group", "missing_receipt", "unset"}
