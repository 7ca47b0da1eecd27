import django.db.models.deletion
from django.db import migrations, models

from dlrconsole.lib.redundant_indexes import drop_column_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("feed", "0005_endpoint_management"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="feeddelivery",
                    name="endpoint",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="feed.productendpoint",
                    ),
                ),
                migrations.AlterField(
                    model_name="feeddelivery",
                    name="event",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="deliveries",
                        to="feed.feedevent",
                    ),
                ),
            ],
            database_operations=[drop_column_indexes("feed_feeddelivery", ("event_id", "endpoint_id"))],
        ),
    ]
