from django.db import migrations, models

from dlrconsole.lib.redundant_indexes import unique_without_pattern_index


class Migration(migrations.Migration):
    dependencies = [
        ("retries", "0015_pilot_flow_link"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="attempt",
                    name="idempotency_key",
                    field=models.CharField(max_length=64),
                ),
                migrations.AddConstraint(
                    model_name="attempt",
                    constraint=models.UniqueConstraint(
                        fields=("idempotency_key",), name="attempt_unique_idempotency_key"
                    ),
                ),
            ],
            database_operations=[
                unique_without_pattern_index("retries_attempt", "idempotency_key", "attempt_unique_idempotency_key")
            ],
        ),
    ]
