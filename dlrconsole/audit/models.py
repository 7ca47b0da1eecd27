"""The audit log: one entry per configuration change (who, when, which object, what changed).

Entries are written from django-simple-history's records (audit/recording.py): every model
with history is configuration and appears here. The per-model history tables stay the full
record (the admin's "History" buttons); an entry is the readable diff, computed once when the
change is made, with secrets only ever as "changed".
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history import register

from dlrconsole.lib.history import AuditedHistory


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        CREATED = "created", _("Created")
        CHANGED = "changed", _("Changed")
        DELETED = "deleted", _("Deleted")

    at = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept apart from `user`: the entry still says who after the account is deleted. Empty
    # for changes made outside a signed-in request (commands, the feed's automatic disabling).
    username = models.CharField(max_length=150, blank=True)
    model = models.CharField(max_length=100, help_text="app_label.modelname")
    model_name = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=16, choices=Action.choices)
    # [{"field", "label", "old", "new"}], or {"field", "label", "secret": true} for a secret,
    # or {"field", "label", "added": [...], "removed": [...]} for a many-to-many field.
    changes = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The audit page's filters, newest first.
            models.Index(fields=["model", "-id"], name="audit_model_idx"),
            models.Index(fields=["username", "-id"], name="audit_username_idx"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username or 'system'} {self.action} {self.object_repr}"


class ErasureRequest(models.Model):
    """A data-protection request carried out: one recipient's number erased from every table
    (dlrconsole/erasure.py). The number itself is never kept: its masked form for people, and a
    keyed hash (HMAC under SECRET_KEY) that answers "was this number erased?" without it."""

    at = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    masked_number = models.CharField(max_length=24)
    # Who asks again about the same number finds the earlier request by it.
    number_hash = models.CharField(max_length=64, db_index=True)
    # Rows erased or anonymized, per table.
    counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"erasure of {self.masked_number}"


# Users and their role groups: who may do what is configuration too. The password is a
# secret (recorded as "changed"); a login's last_login update is not a change.
register(
    get_user_model(),
    app="dlrconsole.audit",
    records_class=AuditedHistory,
    secret_fields=["password"],
    excluded_fields=["last_login"],
    quiet_fields=["last_login"],
    m2m_fields=["groups", "user_permissions"],
)
register(Group, app="dlrconsole.audit", records_class=AuditedHistory, m2m_fields=["permissions"])
