"""Keep secrets and phone numbers out of logs.

Django logs the path of every 4xx/5xx response, and a token posted in /hooks/<slug>/<token>/ is
a secret; a search's query string holds the number searched for. At DEBUG, Django's template
engine logs every missing variable with the whole context: the request, its CSRF token, the
rows shown. tests/test_logs_keep_secrets.py runs the main flows at DEBUG and scans the lines.
"""

from __future__ import annotations

import logging
import re

from django_guid import get_guid
from pythonjsonlogger.core import LogData
from pythonjsonlogger.json import JsonFormatter

HOOK_TOKEN = re.compile(r"(/hooks/[-\w]+/)[^/\s?\"']+/?")
# An international number as written or URL-encoded: what a line keeps is enough to recognise
# it (country code and last digits, as the console masks), not to call it.
PHONE_NUMBER = re.compile(r"(\+|%2[Bb])(\d{3})\d{2,10}(\d{3})(?!\d)")
# Loggers whose DEBUG lines are dumps of whatever they hold (a template's whole context).
DUMPING_LOGGERS = ("django.template",)


def redact(text: str) -> str:
    return PHONE_NUMBER.sub(r"\1\2•••\3", HOOK_TOKEN.sub(r"\1…/", text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG and record.name.startswith(DUMPING_LOGGERS):
            return False
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class JsonLines(JsonFormatter):
    """One JSON object a line (python-json-logger), redacted as a whole: besides the message, a
    line holds what loggers pass in `extra` (Django's request logger passes the request, whose
    text is its path, a token in it) and tracebacks, which the filter above does not reach."""

    def jsonify_log_record(self, log_data: LogData) -> str:
        return redact(super().jsonify_log_record(log_data))


class RequestId(logging.Filter):
    """Adds `request_id` to every record: the request's, or in a Celery task the one of the
    request that caused it (None outside both, e.g. at start-up)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = get_guid()
        return True
