"""Events get a random webhook-id of their own, kept forever: `evt_<row id>` started again
after a rebuild or a restore, and a product deduplicating on it dropped real events.

Existing events get a new random id each (a product saw `evt_<id>` for them; retries of a
delivery still open are sent under the new one, which it has not seen: at worst one event
is received twice, never one dropped). Added empty, filled, then made unique and required.
"""

import uuid

from django.db import migrations, models

import retries.feed.models


def fill(apps, schema_editor):
    FeedEvent = apps.get_model("feed", "FeedEvent")
    batch = []
    for event in FeedEvent.objects.filter(webhook_id__isnull=True).only("pk").iterator(chunk_size=2000):
        event.webhook_id = f"evt_{uuid.uuid4().hex}"
        batch.append(event)
        if len(batch) >= 2000:
            FeedEvent.objects.bulk_update(batch, ["webhook_id"])
            batch = []
    FeedEvent.objects.bulk_update(batch, ["webhook_id"])


class Migration(migrations.Migration):

    dependencies = [
        ("feed", "0003_secret_encrypted"),
    ]

    operations = [
        migrations.AddField(
            model_name="feedevent",
            name="webhook_id",
            field=models.CharField(max_length=40, null=True, editable=False),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="feedevent",
            name="webhook_id",
            field=models.CharField(
                default=retries.feed.models.new_webhook_id, editable=False, max_length=40, unique=True
            ),
        ),
    ]
