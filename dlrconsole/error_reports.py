"""What an error report may show: the technical 500 page (DEBUG on) and the e-mails sent to
ADMINS both list the settings. Django hides those named like a key, a token or a password;
URLs carry credentials too (DATABASE_URL, REDIS_URL, the broker's, an e-mail server's), so
they are hidden as well."""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class ReportFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile("API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN", flags=re.IGNORECASE)
