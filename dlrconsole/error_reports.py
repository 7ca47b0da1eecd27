"""What an error report may show: the technical 500 page (DEBUG on) and the e-mails sent to
ADMINS both list the settings. Django hides those named like a key, a token or a password;
URLs carry credentials too (DATABASE_URL, REDIS_URL, the broker's, an e-mail server's), so
they are hidden as well."""

from __future__ import annotations

import re
from typing import Any

from django.utils.functional import Promise as StrPromise
from django.utils.log import AdminEmailHandler
from django.views.debug import SafeExceptionReporterFilter

from dlrconsole.lib.scrub import scrub_text


class ReportFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile("API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN", flags=re.IGNORECASE)


class ScrubbedAdminEmailHandler(AdminEmailHandler):
    """Django's report of a server error mailed to ADMINS, with phone numbers and secrets taken
    out of the whole mail: it quotes the request (a provider's form fields, a search's query
    string) and the traceback, which the settings filter above does not reach."""

    def send_mail(self, subject: str | StrPromise, message: str | StrPromise, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("html_message", None)  # the HTML page repeats the text unscrubbed
        super().send_mail(scrub_text(str(subject)), scrub_text(str(message)), *args, **kwargs)
