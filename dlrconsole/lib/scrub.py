"""Take phone numbers and secrets out of what leaves the process for error tracking (Sentry
events) and error reports mailed to ADMINS.

An error event gathers whatever was at hand when something failed: the request's URL and
headers, log lines and SQL statements as breadcrumbs, exception messages that quote a payload.
Every string in it is scrubbed (numbers, credentials in URLs, tokens in webhook paths and
Authorization values), and every value whose key names a secret is dropped whole, however deep.
Over-scrubbing a long id is the price of never sending a number: an event is read by people
who have no role that may see recipients.
"""

from __future__ import annotations

import re
from typing import Any

FILTERED = "[Filtered]"
PHONE = "[phone]"

# Keys whose values are secrets wherever they appear: headers (Authorization, Cookie,
# X-Twilio-Signature, webhook-signature, X-DLR-Token, X-Api-Key), settings, form fields, extras.
SECRET_KEY_NAME = re.compile(
    r"auth|cookie|csrf|session|signature|token|secret|passw|api[-_]?key|private|credential|dsn|jwt|^key$",
    re.IGNORECASE,
)
# A URL's password: postgres://dlr:s3cret@db.internal/dlr, redis://:pw@host, smtp+tls://u:p@host.
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)
# The token of providers that cannot sign, in /hooks/<slug>/<token>/.
HOOK_TOKEN = re.compile(r"(/hooks/[-\w]+/)[^/\s?\"']+")
# Credentials after an authentication scheme, in a header value quoted in a message.
AUTH_VALUE = re.compile(r"\b(Api-Key|Token|Bearer|Basic)\s+[^\s\"',]+", re.IGNORECASE)
# Numbers in international form (+33612345678, +1 415 555 0123, %2B33612345678, 0033 6 12 ...)
# and national forms (06 12 34 56 78, (415) 555-0123, 0612345678): 8 to 15 digits, in groups
# separated by at most one space, dot or dash. Not inside a longer run of letters and digits
# (a hex id), so provider ids and hashes keep their shape.
PHONE_NUMBER = re.compile(
    r"(?<![\w%])(?:\+|%2[Bb]|00)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,4}){1,7}(?![\w])",
)
DIGITS = re.compile(r"\d")
# Shaped like a number but not one: a date, an IPv4 address.
NOT_A_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,3}(?:\.\d{1,3}){3}")


def _phone(match: re.Match[str]) -> str:
    found = match.group(0)
    if NOT_A_PHONE.fullmatch(found) or not 8 <= len(DIGITS.findall(found)) <= 15:
        return found
    return PHONE


def scrub_text(text: str) -> str:
    """`text` without credentials in URLs, webhook tokens, Authorization values or numbers."""
    text = URL_PASSWORD.sub(rf"\1{FILTERED}@", text)
    text = HOOK_TOKEN.sub(rf"\1{FILTERED}", text)
    text = AUTH_VALUE.sub(rf"\1 {FILTERED}", text)
    return PHONE_NUMBER.sub(_phone, text)


def scrub(value: Any, *, depth: int = 0) -> Any:
    """A copy of `value` (dicts, lists, strings, as JSON holds them) scrubbed all the way down."""
    if depth > 30:  # an event is a tree of bounded depth; never recurse without end
        return FILTERED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {
            key: FILTERED if isinstance(key, str) and SECRET_KEY_NAME.search(key) else scrub(item, depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        # Sentry sends headers as [name, value] pairs too.
        if len(value) == 2 and isinstance(value[0], str) and SECRET_KEY_NAME.search(value[0]):
            return [value[0], FILTERED]
        return [scrub(item, depth=depth + 1) for item in value]
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """sentry-sdk's `before_send` (and `before_send_transaction`): the event, scrubbed."""
    scrubbed: dict[str, Any] = scrub(event)
    return scrubbed
