"""Secrets encrypted at rest: model fields whose value the database only ever holds as a Fernet
token (AES-128-CBC with an HMAC-SHA256, from `cryptography`), encrypted and decrypted in the
application with the keys of DLR_SECRETS_KEYS.

A database dump, a replica or a backup then reveals no provider secret, send-API credential or
feed signing secret without the keys, which live in the environment. The first key encrypts,
every key decrypts (MultiFernet): a key is rotated by putting a new one first, re-encrypting
(`manage.py rotate_secrets_key`), then dropping the old one (docs/SECURITY.md).

Why not a field library: the maintained one (django-fernet-encrypted-fields) turns every value
of a JSON document into a string, marks "already decrypted" on the shared field object (a race
between threads), and hands back the ciphertext as the value when no key fits; a lost key must
fail loudly, and JSON must come back as it went in.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class UnreadableSecret(ImproperlyConfigured):
    """A stored secret no key of DLR_SECRETS_KEYS decrypts: the key it was written with is gone."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.DLR_SECRETS_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _decrypt(tuple(settings.DLR_SECRETS_KEYS), token)
    except InvalidToken:
        raise UnreadableSecret(
            "a stored secret cannot be decrypted with any key of DLR_SECRETS_KEYS: "
            "is the key it was encrypted with missing?"
        ) from None


@lru_cache(maxsize=512)
def _decrypt(keys: tuple[str, ...], token: str) -> str:
    # The same few tokens (a connection's secrets, an endpoint's, a sender's) are read with
    # every batch, pass and attempt: verifying and decrypting each again was 3 % of a worker's
    # CPU at 300 receipts/s. Keyed by the keys too, so a key dropped from the settings fails
    # loudly at once; a token that does not decrypt raises and is not remembered.
    return _fernet(keys).decrypt(token.encode()).decode()


def reencrypt(token: str) -> str:
    """The same secret under the first key (key rotation)."""
    return fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A string, stored encrypted. Empty stays empty (nothing to hide, and forms test for it)."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return decrypt(value) if value else value

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        return encrypt(value) if value else value


class EncryptedJSONField(models.Field[Any, Any]):
    """A JSON document, stored encrypted as one token (a text column); it reads back exactly as
    it was saved. Not queryable by its content, which nothing needs."""

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        # Forms and deserialization hand over the document itself, or its JSON text.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt(json.dumps(value, separators=(",", ":")))

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj))

    def formfield(self, **kwargs: Any) -> Any:
        return models.JSONField().formfield(**kwargs)


def encrypt_column(schema_editor: Any, table: str, column: str, pk: str = "id") -> None:
    """Data migrations: encrypt a column's plaintext values in place (they are text by then)."""
    _rewrite_column(schema_editor, table, column, pk, encrypt)


def decrypt_column(schema_editor: Any, table: str, column: str, pk: str = "id") -> None:
    """Data migrations, backwards: the plaintext back, before the column's type is restored."""
    _rewrite_column(schema_editor, table, column, pk, decrypt)


def _rewrite_column(schema_editor: Any, table: str, column: str, pk: str, change: Any) -> None:
    table, column, pk = (schema_editor.quote_name(name) for name in (table, column, pk))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT {pk}, {column} FROM {table} WHERE {column} <> ''")  # noqa: S608
        for key, value in cursor.fetchall():
            cursor.execute(f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", [change(value), key])  # noqa: S608
