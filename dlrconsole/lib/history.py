"""History for configuration models, with secrets kept out of it.

`AuditedHistory` is django-simple-history's `HistoricalRecords` with two additions:

- `secret_fields` are not copied into the history, and `secret_keys` (field → a function of
  the instance giving the keys of that JSON field that hold credentials) are copied with
  those keys' values replaced by "(secret)". Each record keeps instead a keyed
  fingerprint of them (an HMAC with the project's SECRET_KEY, cut to 16 hex digits), so the
  audit log can say "changed" between two records without anything that reveals the secret:
  not reversible, and unlike a plain hash it cannot be used to test guesses of a weak secret
  offline. Rotating SECRET_KEY makes the next save of each record look like a secret change.
- saves that only touch `quiet_fields` (bookkeeping such as a user's last login or an
  endpoint's failure counter) write no record at all: they are not configuration changes and
  some happen on every request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db import models
from django.utils.crypto import salted_hmac
from simple_history.models import HistoricalRecords


class SecretFingerprints(models.Model):
    """Mixed into the historical models of models with secrets (see AuditedHistory)."""

    secret_fingerprints = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        abstract = True


class AuditedHistory(HistoricalRecords):
    def __init__(
        self,
        *,
        secret_fields: Iterable[str] = (),
        secret_keys: Mapping[str, Callable[[Any], Iterable[str]]] | None = None,
        quiet_fields: Iterable[str] = (),
        excluded_fields: Iterable[str] = (),
        **options: Any,
    ) -> None:
        self.secret_fields = tuple(secret_fields)
        self.secret_keys = dict(secret_keys or {})
        self.quiet_fields = frozenset(quiet_fields)
        if self.secret_fields or self.secret_keys:
            options.setdefault("bases", [SecretFingerprints])
        super().__init__(excluded_fields=[*excluded_fields, *self.secret_fields], **options)

    def get_extra_fields(self, model: type[models.Model], fields: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = super().get_extra_fields(model, fields)
        # Read by audit.recording when a record is made.
        extra["audit_secret_fields"] = self.secret_fields
        extra["audit_secret_keys"] = self.secret_keys
        return extra

    def post_save(self, instance: models.Model, created: bool, using: str | None = None, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields and self.quiet_fields.issuperset(update_fields):
            return
        super().post_save(instance, created, using=using, **kwargs)


REDACTED = "(secret)"


def secret_fingerprint(value: Any) -> str:
    """A keyed, non-reversible fingerprint: equal values give equal fingerprints."""
    text = json.dumps(value, sort_keys=True, default=str)
    return salted_hmac("dlrconsole.audit.secret-fingerprint", text, algorithm="sha256").hexdigest()[:16]
