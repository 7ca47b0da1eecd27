import django.db.models.deletion
from django.db import migrations, models

from dlrconsole.lib.redundant_indexes import drop_column_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("receipts", "0026_receipt_connection_checked_once"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="connectionprice",
                    name="connection",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="prices",
                        to="receipts.connection",
                    ),
                ),
                migrations.AlterField(
                    model_name="conversion",
                    name="message",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="conversions",
                        to="receipts.message",
                    ),
                ),
                migrations.AlterField(
                    model_name="webhookrefusal",
                    name="connection",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="receipts.connection",
                    ),
                ),
            ],
            database_operations=[
                drop_column_indexes("receipts_connectionprice", ("connection_id",)),
                drop_column_indexes("receipts_conversion", ("message_id",)),
                drop_column_indexes("receipts_webhookrefusal", ("connection_id",)),
            ],
        ),
    ]
