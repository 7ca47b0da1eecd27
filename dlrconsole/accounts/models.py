"""API keys: hashed at rest, named, revocable, optionally expiring, each acting as one user.

djangorestframework-api-key makes and checks the keys (`<prefix>.<secret>`, a SHA-512 of the
whole key stored, the prefix kept in clear to find the row); this model adds the user whose
permissions a key carries, so the API's permission checks read `request.user` as for a
session (accounts/authentication.py).
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager

from dlrconsole.lib.history import AuditedHistory

# Tokens made before keys were hashed are 40 hex digits without a prefix; the migration that
# hashed them stored each under one of its 8-character slices (the first that was free).
LEGACY_KEY_LENGTH = 40
PREFIX_LENGTH = 8


def legacy_prefixes(key: str) -> list[str]:
    """Where a token from before the upgrade may be filed."""
    return [key[start : start + PREFIX_LENGTH] for start in range(0, LEGACY_KEY_LENGTH, PREFIX_LENGTH)]


class UserAPIKeyManager(APIKeyManager):
    def assign_key(self, obj: AbstractAPIKey) -> str:
        key: str = super().assign_key(obj)
        # The library numbers rows `<prefix>.<hash>`: that would put the hash in admin URLs and
        # the audit log. Rows are numbered instead; the prefix and hash are kept as they are.
        obj.id = None  # type: ignore[assignment]  # the library types its id as text
        return key


class UserAPIKey(AbstractAPIKey):
    objects: ClassVar[UserAPIKeyManager] = UserAPIKeyManager()

    id = models.BigAutoField(primary_key=True)  # type: ignore[assignment]
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="The key acts as this user, with this user's role and permissions.",
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Creation and revocation are configuration changes (the audit log); never the hash.
    history = AuditedHistory(excluded_fields=["hashed_key", "last_used_at"], quiet_fields=["last_used_at"])

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


def validate_time_zone(value: str) -> None:
    if value not in available_time_zones():
        raise ValidationError(_("%(value)r is not a time zone name such as Europe/Paris."), params={"value": value})


@cache
def available_time_zones() -> frozenset[str]:
    """The IANA names this system knows (zoneinfo), read once per process."""
    return frozenset(zoneinfo.available_timezones())


def language_choices() -> list[tuple[str, str]]:
    """The console's languages (settings.LANGUAGES), read when asked so that adding one needs
    no migration."""
    return list(settings.LANGUAGES)


class Profile(models.Model):
    """A person's own settings for the console: the time zone their pages show times in and the
    language they are written in (empty: the browser's, from Accept-Language)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    language = models.CharField(max_length=8, blank=True, default="", choices=language_choices)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.time_zone}"
