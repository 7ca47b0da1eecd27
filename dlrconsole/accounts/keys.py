"""API keys: make one (shown once), find the one a caller presents, revoke one."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from dlrconsole.accounts.models import LEGACY_KEY_LENGTH, UserAPIKey, legacy_prefixes

# Longer input is no key of ours: refused before any lookup.
MAX_KEY_LENGTH = 200
# last_used_at is a hint for whoever revokes unused keys, not a log: one write per key per
# this interval at most, so reads by the product do not each write a row.
LAST_USED_GRANULARITY = timedelta(minutes=5)


def api_key_create(*, user: AbstractBaseUser, name: str, expires_at: datetime | None = None) -> tuple[UserAPIKey, str]:
    """A new key acting as `user`; the clear key is returned once and stored nowhere."""
    api_key, key = UserAPIKey.objects.create_key(user=user, name=name, expiry_date=expires_at)
    assert isinstance(api_key, UserAPIKey)
    return api_key, key


def api_key_find(key: str) -> UserAPIKey | None:
    """The usable (not revoked) key matching `key`, expired or not; None if there is none.

    New keys are `<prefix>.<secret>`; tokens from before keys were hashed are 40 hex digits
    filed under one of their slices (accounts/migrations/0002)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    prefix, dot, _ = key.partition(".")
    prefixes = [prefix] if dot else legacy_prefixes(key) if len(key) == LEGACY_KEY_LENGTH else []
    candidates = UserAPIKey.objects.get_usable_keys().filter(prefix__in=prefixes).select_related("user")
    return next((candidate for candidate in candidates if candidate.is_valid(key)), None)


def api_key_used(api_key: UserAPIKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_GRANULARITY:
        # An update, not a save: bookkeeping, not a configuration change for the audit log.
        UserAPIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)


def api_key_revoke(*, prefix: str) -> UserAPIKey:
    """Revoke the key with this prefix (what lists and the admin show); for good."""
    with transaction.atomic():
        api_key = UserAPIKey.objects.select_for_update().get(prefix=prefix)
        if not api_key.revoked:
            api_key.revoked = True
            api_key.save(update_fields=["revoked"])
    return api_key
