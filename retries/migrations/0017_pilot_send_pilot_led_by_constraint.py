import django.db.models.deletion
from django.db import migrations, models

from dlrconsole.lib.redundant_indexes import drop_column_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("retries", "0016_attempt_idempotency_key_without_pattern_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="pilotsend",
                    name="pilot",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sends",
                        to="retries.pilot",
                    ),
                ),
            ],
            database_operations=[drop_column_indexes("retries_pilotsend", ("pilot_id",))],
        ),
    ]
