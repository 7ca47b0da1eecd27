from __future__ import annotations

import pytest
from django.core import mail

from retries.senders.base import SendError
from retries.senders.registry import get_sender

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"


def test_locmem_backend_receives_the_message_with_a_message_id() -> None:
    mail.outbox = []
    s = get_sender("email", {"backend": LOCMEM, "from_email": "noreply@dlr.example", "subject": "Your code"})
    result = s.send(to="user@example.com", body="Your code is 1234", sender_id="", options={}, idempotency_key="a-1")
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["user@example.com"]
    assert sent.body == "Your code is 1234"
    assert sent.from_email == "noreply@dlr.example"
    assert sent.subject == "Your code"
    assert sent.extra_headers["Message-ID"] == result.provider_message_id


def test_invalid_address_is_permanent() -> None:
    s = get_sender("email", {"backend": LOCMEM})
    with pytest.raises(SendError) as caught:
        s.send(to="not-an-address", body="x", sender_id="", options={}, idempotency_key="a-2")
    assert caught.value.permanent is True


def test_smtp_connection_refused_is_temporary_and_hides_the_password(closed_port_url: str) -> None:
    port = closed_port_url.rsplit(":", 1)[1]
    s = get_sender(
        "email",
        {
            "backend": SMTP,
            "host": "127.0.0.1",
            "port": port,
            "username": "u",
            "password": "smtp-pass-1a1a",
            "timeout": 2,
        },
    )
    with pytest.raises(SendError) as caught:
        s.send(to="user@example.com", body="x", sender_id="", options={}, idempotency_key="a-3")
    assert caught.value.permanent is False
    assert "smtp-pass-1a1a" not in str(caught.value)


def test_bad_from_address_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="from_email"):
        get_sender("email", {"from_email": "nope"})
