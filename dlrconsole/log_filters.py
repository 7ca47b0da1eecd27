"""Keep secrets and phone numbers out of logs.

Django logs the path of every 4xx/5xx response, and a token posted in /hooks/<slug>/<token>/ is
a secret; a search's query string holds the number searched for. At DEBUG, Django's template
engine logs every missing variable with the whole context: the request, its CSRF token, the
rows shown. tests/test_logs_keep_secrets.py runs the main flows at DEBUG and scans the lines.
"""

from __future__ import annotations

import logging
import re

HOOK_TOKEN = re.compile(r"(/hooks/[-\w]+/)[^/\s?\"']+/?")
# An international number as written or URL-encoded: what a line keeps is enough to recognise
# it (country code and last digits, as the console masks), not to call it.
PHONE_NUMBER = re.compile(r"(\+|%2[Bb])(\d{3})\d{2,10}(\d{3})(?!\d)")
# Loggers whose DEBUG lines are dumps of whatever they hold (a template's whole context).
DUMPING_LOGGERS = ("django.template",)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG and record.name.startswith(DUMPING_LOGGERS):
            return False
        message = record.getMessage()
        redacted = PHONE_NUMBER.sub(r"\1\2•••\3", HOOK_TOKEN.sub(r"\1…/", message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
