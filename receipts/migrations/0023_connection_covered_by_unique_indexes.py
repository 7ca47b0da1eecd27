import django.db.models.deletion
from django.db import migrations, models

from dlrconsole.lib.redundant_indexes import drop_column_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("receipts", "0022_connection_test_mode"),
    ]

    # The indexes only: a plain AlterField dropped each foreign key and added it again, checking
    # every message and every receipt under a lock that holds up ingestion.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="connection",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="messages",
                        to="receipts.connection",
                    ),
                ),
                migrations.AlterField(
                    model_name="receipt",
                    name="connection",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="receipts",
                        to="receipts.connection",
                    ),
                ),
            ],
            database_operations=[
                drop_column_indexes("receipts_message", ("connection_id",)),
                drop_column_indexes("receipts_receipt", ("connection_id",)),
            ],
        ),
    ]
