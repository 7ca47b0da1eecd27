"""What may be recorded of an unexpected failure (an outbox event's consumer, a feed delivery,
an attempt that raised): shown in the admin and counted, so never a secret, a phone number or a
peer's words. The exception's class says what broke; its message keeps only its shape."""

from __future__ import annotations

import re

# Masked in order: URLs (tokens in queries, credentials in user info), quoted values (keys,
# tokens, texts that messages quote), values PostgreSQL's DETAIL lines show as `=(…)`, and long
# numbers (phone numbers, ids).
_MASKS = (
    (re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE), "<url>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'…'"),
    (re.compile(r"=\([^)]*\)"), "=(…)"),
    (re.compile(r"\+?\d[\d ().-]{4,}\d"), "…"),
)
LENGTH = 255


def failure_summary(exc: BaseException) -> str:
    """`ClassName: message` with its values masked, on one line, cut to a column's length."""
    text = " ".join(str(exc).split())
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    name = type(exc).__name__
    return (f"{name}: {text}" if text else name)[:LENGTH]
