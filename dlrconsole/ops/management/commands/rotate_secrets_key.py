"""Re-encrypt every secret stored at rest under the first key of DLR_SECRETS_KEYS.

Rotation: put a new key first in DLR_SECRETS_KEYS (keeping the old one after it), restart every
process, run this command, then drop the old key. Safe to run again: a value already under the
first key is rewritten under it. Rows are rewritten in place, without saving the models, so no
history record, audit entry or `updated_at` changes: the secrets themselves did not change.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from dlrconsole.lib.secrets_at_rest import EncryptedJSONField, EncryptedTextField, reencrypt


class Command(BaseCommand):
    help = "Re-encrypt every secret stored at rest under the first key of DLR_SECRETS_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model in apps.get_models():
            columns = [
                str(field.column)
                for field in model._meta.concrete_fields
                if isinstance(field, EncryptedTextField | EncryptedJSONField)
            ]
            if not columns or model._meta.proxy or model._meta.pk is None:
                continue
            rewritten = _rewrite(model._meta.db_table, str(model._meta.pk.column), columns)
            total += rewritten
            if rewritten:
                self.stdout.write(f"{model._meta.label}: {rewritten} value(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"{total} value(s) now encrypted under the first key."))


def _rewrite(table: str, pk: str, columns: list[str]) -> int:
    quote = connection.ops.quote_name
    rewritten = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for column in columns:
            cursor.execute(f"SELECT {quote(pk)}, {quote(column)} FROM {quote(table)} WHERE {quote(column)} <> ''")  # noqa: S608
            for key, token in cursor.fetchall():
                cursor.execute(
                    f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE {quote(pk)} = %s",  # noqa: S608
                    [reencrypt(token), key],
                )
                rewritten += 1
    return rewritten
