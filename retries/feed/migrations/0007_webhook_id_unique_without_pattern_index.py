import retries.feed.models
from django.db import migrations, models

from dlrconsole.lib.redundant_indexes import unique_without_pattern_index


class Migration(migrations.Migration):
    dependencies = [
        ("feed", "0006_delivery_indexes_led_by_constraints"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="feedevent",
                    name="webhook_id",
                    field=models.CharField(default=retries.feed.models.new_webhook_id, editable=False, max_length=40),
                ),
                migrations.AddConstraint(
                    model_name="feedevent",
                    constraint=models.UniqueConstraint(fields=("webhook_id",), name="feed_event_unique_webhook_id"),
                ),
            ],
            database_operations=[
                unique_without_pattern_index("feed_feedevent", "webhook_id", "feed_event_unique_webhook_id")
            ],
        ),
    ]
