"""The outbox now belongs to receipts (receipts 0010 took its table and rows): decisions point
there, and retries forgets its own copy of the model. No database change."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("receipts", "0010_outbox_moves_to_receipts"),
        ("retries", "0007_configuration_history"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="decision",
                    name="outbox_event",
                    field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="decision", to="receipts.outboxevent"),
                ),
                migrations.DeleteModel(name="OutboxEvent"),
            ],
            database_operations=[],
        ),
    ]
