"""Product endpoints' signing secrets are encrypted at rest; backwards, decrypted before the type
is restored."""

import dlrconsole.lib.secrets_at_rest
import retries.feed.models
from django.db import migrations

from dlrconsole.lib.secrets_at_rest import decrypt_column, encrypt_column

# (table, column, primary key) of every value now stored encrypted.
COLUMNS = [('feed_productendpoint', 'secret', 'id')]


def encrypt(apps, schema_editor):
    for table, column, pk in COLUMNS:
        encrypt_column(schema_editor, table, column, pk)


def decrypt(apps, schema_editor):
    for table, column, pk in COLUMNS:
        decrypt_column(schema_editor, table, column, pk)


class Migration(migrations.Migration):

    dependencies = [
        ('feed', '0002_endpoint_url_outbound'),
        ('retries', '0011_sender_configs_encrypted'),
    ]

    operations = [
        migrations.AlterField(
            model_name='productendpoint',
            name='secret',
            field=dlrconsole.lib.secrets_at_rest.EncryptedTextField(validators=[retries.feed.models.validate_feed_secret]),
        ),
        migrations.RunPython(encrypt, decrypt),
    ]
