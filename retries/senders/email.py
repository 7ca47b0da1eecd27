"""Fallback channel: e-mail through Django's email backend.

`to` is an e-mail address here. The connection gets an explicit timeout because Django's SMTP
backend otherwise waits on the socket default (none). The Message-ID we set is the provider id.
"""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Mapping
from email.utils import make_msgid
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.validators import validate_email

from dlrconsole.lib import outbound
from retries.senders.base import Sender, SendError, SendResult

DEFAULT_SMTP_TIMEOUT = 10.0


class _GuardedSMTP(smtplib.SMTP):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # The mail server's address is judged like any peer's (dlrconsole/lib/outbound.py).
        source = self.source_address
        return outbound.connect(host, port, timeout, source if isinstance(source, tuple) else None)


class _GuardedSMTPSSL(smtplib.SMTP_SSL, _GuardedSMTP):
    # SMTP_SSL wraps the socket its parent opens: here, _GuardedSMTP's.
    pass


class _GuardedSMTPBackend(SMTPBackend):
    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return _GuardedSMTPSSL if self.use_ssl else _GuardedSMTP


class EmailSender(Sender):
    kind = "email"
    label = "E-mail (Django email backend)"
    secret_keys: ClassVar[tuple[str, ...]] = ("password",)
    setting_fields: ClassVar[tuple[str, ...]] = ("from_email", "host", "port", "username", "subject", "timeout")

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        from_email = str(config.get("from_email") or "")
        if from_email:
            try:
                validate_email(from_email)
            except ValidationError:
                raise ValueError("from_email is not a valid e-mail address") from None
        if config.get("host") and (problem := outbound.host_problem(str(config["host"]))):
            raise ValueError(f"host {problem}")
        if config.get("port") not in (None, "") and not str(config["port"]).isdigit():
            raise ValueError("port must be a number")
        if config.get("timeout") not in (None, ""):
            try:
                timeout = float(config["timeout"])
            except (TypeError, ValueError):
                raise ValueError("timeout must be a number of seconds") from None
            if not 0 < timeout <= settings.DLR_SEND_TIMEOUT_MAX_SECONDS:
                raise ValueError(f"timeout must be between 0 and {settings.DLR_SEND_TIMEOUT_MAX_SECONDS} seconds")

    @property
    def longest(self) -> float:
        # Each SMTP exchange waits at most this long; a pass plans for one such wait.
        return float(self.config.get("timeout") or DEFAULT_SMTP_TIMEOUT)

    def _connection(self) -> Any:
        kwargs: dict[str, Any] = {"timeout": float(self.config.get("timeout") or DEFAULT_SMTP_TIMEOUT)}
        # Only pass what is configured: the rest falls back to the EMAIL_* settings.
        for key in ("host", "username", "password", "use_tls", "use_ssl"):
            if self.config.get(key) not in (None, ""):
                kwargs[key] = self.config[key]
        if self.config.get("port") not in (None, ""):
            kwargs["port"] = int(self.config["port"])
        connection = get_connection(self.config.get("backend") or None, fail_silently=False, **kwargs)
        if type(connection) is SMTPBackend:
            # Django's SMTP backend, with the outbound guard on its socket.
            return _GuardedSMTPBackend(fail_silently=False, **kwargs)
        return connection

    def send(
        self,
        *,
        to: str,
        body: str,
        sender_id: str,
        options: Mapping[str, Any],
        idempotency_key: str,
        status_callback_url: str = "",
    ) -> SendResult:
        try:
            validate_email(to)
        except ValidationError:
            raise SendError("invalid e-mail address", permanent=True) from None
        subject = str(options.get("subject") or self.config.get("subject") or "Your message")
        message_id = make_msgid(idstring=idempotency_key[:40] or None, domain="dlrconsole")
        email = EmailMessage(
            subject=subject,
            body=body,
            from_email=sender_id or self.config.get("from_email") or None,
            to=[to],
            headers={"Message-ID": message_id},
            connection=self._connection(),
        )
        started = time.monotonic()
        try:
            email.send()
        except outbound.DestinationRefused as exc:
            raise SendError(f"refused: {exc}", permanent=True) from None
        except smtplib.SMTPRecipientsRefused:
            raise SendError("the mail server refused the recipient", permanent=True) from None
        except smtplib.SMTPAuthenticationError:
            raise SendError("the mail server rejected the credentials", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused, timeouts and 4xx SMTP replies are all worth another try.
            raise SendError(f"mail server unavailable ({type(exc).__name__})", permanent=False) from None
        # Not the address: the summary is shown where the recipient's details are masked.
        return SendResult(message_id, f"sent as {message_id}", time.monotonic() - started)
