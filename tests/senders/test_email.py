from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from django.core import mail

from retries.senders.base import Sender, SendError
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


@pytest.fixture
def mail_port() -> Iterator[tuple[int, list[int]]]:
    """A loopback listener standing in for a mail server: counts connections, hangs up at once."""
    accepted: list[int] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=5)
    listener.close()


def mail_sender(port: int) -> Sender:
    return get_sender("email", {"backend": SMTP, "host": "localhost", "port": str(port), "timeout": "1"})


def send_through(sender: Sender) -> None:
    sender.send(to="user@example.com", body="x", sender_id="", options={}, idempotency_key="a-3")


def test_a_mail_server_on_an_internal_address_is_refused_without_connecting(mail_port, settings) -> None:
    port, accepted = mail_port
    sender = mail_sender(port)  # saved while loopback was allowed
    settings.DLR_OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(SendError) as caught:
        send_through(sender)
    assert caught.value.permanent is True
    assert caught.value.reason.startswith("refused: 127.0.0.1 is a loopback address")
    assert accepted == []
    with pytest.raises(ValueError, match=r"host is refused: 10\.0\.0\.1 is a private address"):
        get_sender("email", {"host": "10.0.0.1"})


def test_an_allowed_mail_server_is_reached(mail_port) -> None:
    port, accepted = mail_port
    with pytest.raises(SendError) as caught:
        send_through(mail_sender(port))  # it hangs up before greeting: a temporary error
    assert caught.value.permanent is False
    assert accepted == [1]
