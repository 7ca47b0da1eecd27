"""Connections' secrets are encrypted at rest (DLR_SECRETS_KEYS): the column becomes text and
every stored value is encrypted in place; backwards, decrypted before the type is restored."""

import dlrconsole.lib.secrets_at_rest
import receipts.models
from django.db import migrations

from dlrconsole.lib.secrets_at_rest import decrypt_column, encrypt_column

# (table, column, primary key) of every value now stored encrypted.
COLUMNS = [('receipts_connection', 'secrets', 'id')]


def encrypt(apps, schema_editor):
    for table, column, pk in COLUMNS:
        encrypt_column(schema_editor, table, column, pk)


def decrypt(apps, schema_editor):
    for table, column, pk in COLUMNS:
        decrypt_column(schema_editor, table, column, pk)


class Migration(migrations.Migration):

    dependencies = [
        ('receipts', '0011_outbox_failures'),
    ]

    operations = [
        migrations.AlterField(
            model_name='connection',
            name='secrets',
            field=dlrconsole.lib.secrets_at_rest.EncryptedJSONField(default=list, validators=[receipts.models._validate_secrets]),
        ),
        migrations.RunPython(encrypt, decrypt),
    ]
