"""Send-API and fallback-channel configurations (credentials included) are encrypted at rest,
the rows and their history; backwards, decrypted before the types are restored."""

import dlrconsole.lib.secrets_at_rest
from django.db import migrations

from dlrconsole.lib.secrets_at_rest import decrypt_column, encrypt_column

# (table, column, primary key) of every value now stored encrypted.
COLUMNS = [('retries_connectionsender', 'config', 'id'), ('retries_historicalconnectionsender', 'config', 'history_id'), ('retries_fallbackchannel', 'config', 'id'), ('retries_historicalfallbackchannel', 'config', 'history_id')]


def encrypt(apps, schema_editor):
    for table, column, pk in COLUMNS:
        encrypt_column(schema_editor, table, column, pk)


def decrypt(apps, schema_editor):
    for table, column, pk in COLUMNS:
        decrypt_column(schema_editor, table, column, pk)


class Migration(migrations.Migration):

    dependencies = [
        ('retries', '0010_decision_skip_reason'),
        # One change with the connections' and the feed's: applied in that order.
        ('receipts', '0013_connection_secrets_encrypted'),
    ]

    operations = [
        migrations.AlterField(
            model_name='connectionsender',
            name='config',
            field=dlrconsole.lib.secrets_at_rest.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name='fallbackchannel',
            name='config',
            field=dlrconsole.lib.secrets_at_rest.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name='historicalconnectionsender',
            name='config',
            field=dlrconsole.lib.secrets_at_rest.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name='historicalfallbackchannel',
            name='config',
            field=dlrconsole.lib.secrets_at_rest.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.RunPython(encrypt, decrypt),
    ]
