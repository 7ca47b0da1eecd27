"""Keep secrets out of logs: Django logs the path of every 4xx/5xx response, and a token
posted in /hooks/<slug>/<token>/ is a secret."""

from __future__ import annotations

import logging
import re

HOOK_TOKEN = re.compile(r"(/hooks/[-\w]+/)[^/\s?\"']+/?")


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = HOOK_TOKEN.sub(r"\1…/", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
