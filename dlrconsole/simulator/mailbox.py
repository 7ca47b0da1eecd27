"""A simulated mail server: the demo's e-mail fallback channel delivers into it over real SMTP
(retries/senders/email.py, through the outbound guard), on loopback only.

aiosmtpd, the maintained successor of the standard library's smtpd, speaks SMTP; this module
only keeps what arrives, bounded, for the demo to report and for tests to read.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
# aiosmtpd logs every connection at INFO, over the demo's lines on the terminal; the demo
# reports what arrived in its summary.
logging.getLogger("mail.log").setLevel(logging.WARNING)
# What the demo keeps of the mails it received: the latest ones, for its summary.
KEEP = 200


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    subject: str
    body: str


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content or b"", policy=default_policy)
        body = parsed.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        self.mailbox.received(
            Mail(str(envelope.mail_from), tuple(envelope.rcpt_tos), str(parsed.get("subject", "")), str(text))
        )
        return "250 Message accepted for delivery"


class Mailbox:
    """An SMTP server on 127.0.0.1 that accepts every mail. `start()`, give the console
    `HOST`/`port` as an e-mail channel's host, read `mails`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self.count = 0
        self.port = _free_port()
        self._controller = Controller(_Handler(self), hostname=HOST, port=self.port)

    def received(self, mail: Mail) -> None:
        with self._lock:
            self.count += 1
            self._mails = [*self._mails[-(KEEP - 1) :], mail]

    @property
    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(AssertionError):  # never started
            self._controller.stop()

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def summary(self) -> str:
        return f"Mailbox: {self.count} fallback e-mails received on {HOST}:{self.port}"


def _free_port() -> int:
    # aiosmtpd's controller checks it is up by connecting to its port: it needs a real one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])
