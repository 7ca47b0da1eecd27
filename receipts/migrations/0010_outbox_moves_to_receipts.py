"""The outbox moves from retries to receipts, which writes it: the same rows, its table renamed
from retries_outboxevent to receipts_outboxevent, its content type (and so the permissions
granted on it) relabelled. retries 0008 then points Decision.outbox_event here and forgets its
own copy of the model."""

import django.db.models.deletion
from django.db import migrations, models


def relabel_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="receipts", model="outboxevent").exists():
        ContentType.objects.filter(app_label="retries", model="outboxevent").update(app_label="receipts")


def restore_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="retries", model="outboxevent").exists():
        ContentType.objects.filter(app_label="receipts", model="outboxevent").update(app_label="retries")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("receipts", "0009_console_search_indexes"),
        ("retries", "0007_configuration_history"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="OutboxEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("kind", models.CharField(choices=[("status_changed", "Status changed"), ("no_receipt", "No receipt")], max_length=32)),
                        ("status", models.CharField(max_length=16)),
                        ("created_at", models.DateTimeField()),
                        ("dispatched_at", models.DateTimeField(blank=True, null=True)),
                        ("dispatch_count", models.PositiveIntegerField(default=0)),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                        ("message", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="outbox_events", to="receipts.message")),
                        ("receipt", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to="receipts.receipt")),
                    ],
                    options={
                        "db_table": "retries_outboxevent",
                        "indexes": [models.Index(condition=models.Q(("processed_at__isnull", True)), fields=["dispatched_at"], name="outbox_pending_idx")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="outboxevent", table=None),
        migrations.RunPython(relabel_content_type, restore_content_type),
    ]
