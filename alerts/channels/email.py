"""E-mail through Django's configured backend (EMAIL_* settings)."""

from __future__ import annotations

from collections.abc import Mapping
from smtplib import SMTPRecipientsRefused
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email

from alerts.channels.base import Channel, ChannelError, Notice

MAX_RECIPIENTS = 20


class EmailChannel(Channel):
    kind = "email"
    label = "E-mail"
    fields = (("to", "Addresses, one per line"),)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        to = config.get("to")
        if not isinstance(to, list) or not to:
            raise ValueError("to: a list of one or more e-mail addresses")
        if len(to) > MAX_RECIPIENTS:
            raise ValueError(f"to: at most {MAX_RECIPIENTS} addresses")
        for address in to:
            try:
                validate_email(address)
            except ValidationError:
                raise ValueError(f"to: {address!r} is not an e-mail address") from None

    def send(self, notice: Notice) -> int | None:
        try:
            send_mail(
                subject=f"[DLR Console] {notice.headline}"[:200],
                message=f"{notice.title}\n\n{notice.summary}\n\n{notice.url}\n",
                from_email=None,
                recipient_list=list(self.config["to"]),
            )
        except SMTPRecipientsRefused:
            raise ChannelError("every recipient was refused", permanent=True) from None
        except Exception as exc:  # a mail server down: worth trying again later
            raise ChannelError(f"not sent: {type(exc).__name__}", permanent=False) from None
        return None
