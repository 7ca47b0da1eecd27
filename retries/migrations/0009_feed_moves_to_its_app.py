"""The feed's models now belong to the feed app (feed 0001 took their tables and rows): retries
forgets its own copies. No database change."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('feed', '0001_initial'),
        ('retries', '0008_outbox_moves_to_receipts'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='feeddelivery',
                    name='endpoint',
                ),
                migrations.RemoveField(
                    model_name='feeddelivery',
                    name='event',
                ),
                migrations.RemoveField(
                    model_name='feeddelivery',
                    name='message',
                ),
                migrations.RemoveField(
                    model_name='feedevent',
                    name='message',
                ),
                migrations.RemoveField(
                    model_name='historicalproductendpoint',
                    name='history_user',
                ),
                migrations.DeleteModel(
                    name='FeedAttempt',
                ),
                migrations.DeleteModel(
                    name='ProductEndpoint',
                ),
                migrations.DeleteModel(
                    name='FeedDelivery',
                ),
                migrations.DeleteModel(
                    name='FeedEvent',
                ),
                migrations.DeleteModel(
                    name='HistoricalProductEndpoint',
                ),
            ],
            database_operations=[],
        ),
    ]
