"""The product feed becomes its own app (label "feed"). Its models were retries'; their tables
and rows stay and are renamed from retries_* to feed_*, their content types (and so the
permissions granted on them) and the audit log's entries are relabelled. retries 0009 then
forgets its own copies of the models. Nothing is created or copied."""

import django.db.models.deletion
import retries.feed.models
import simple_history.models
from django.conf import settings
from django.db import migrations, models


MODELS = ("productendpoint", "feeddelivery", "feedattempt", "feedevent", "historicalproductendpoint")


def relabel(apps, schema_editor, old="retries", new="feed"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    AuditEntry = apps.get_model("audit", "AuditEntry")
    for model in MODELS:
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)
        AuditEntry.objects.filter(model=f"{old}.{model}").update(model=f"{new}.{model}")


def relabel_back(apps, schema_editor):
    relabel(apps, schema_editor, old="feed", new="retries")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('audit', '0002_index_by_username'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('receipts', '0010_outbox_moves_to_receipts'),
        ('retries', '0008_outbox_moves_to_receipts'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ProductEndpoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=120)),
                        ('url', models.URLField(max_length=500)),
                        ('secret', models.CharField(max_length=120, validators=[retries.feed.models.validate_feed_secret])),
                        ('event_types', models.JSONField(blank=True, default=list, validators=[retries.feed.models.validate_event_types])),
                        ('enabled', models.BooleanField(default=True)),
                        ('disabled_reason', models.CharField(blank=True, max_length=255)),
                        ('consecutive_failures', models.PositiveIntegerField(default=0)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                    ],
                    options={'db_table': 'retries_productendpoint'},
                ),
                migrations.CreateModel(
                    name='FeedDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('failed', 'Failed (retrying)'), ('abandoned', 'Abandoned')], default='pending', max_length=16)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('last_status_code', models.PositiveIntegerField(blank=True, null=True)),
                        ('last_error', models.CharField(blank=True, max_length=255)),
                        ('last_duration_ms', models.PositiveIntegerField(blank=True, null=True)),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('message', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='receipts.message')),
                    ],
                    options={'db_table': 'retries_feeddelivery'},
                ),
                migrations.CreateModel(
                    name='FeedAttempt',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveIntegerField()),
                        ('attempted_at', models.DateTimeField()),
                        ('status_code', models.PositiveIntegerField(blank=True, null=True)),
                        ('error', models.CharField(blank=True, max_length=255)),
                        ('duration_ms', models.PositiveIntegerField()),
                        ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='log', to='feed.feeddelivery')),
                    ],
                    options={
                        'db_table': 'retries_feedattempt',
                        'ordering': ['delivery_id', 'number'],
                    },
                ),
                migrations.CreateModel(
                    name='FeedEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('type', models.CharField(choices=[('message.delivered', 'Message delivered'), ('message.failed', 'Message failed'), ('message.retry_scheduled', 'Retry scheduled'), ('message.fallback_sent', 'Fallback sent'), ('message.no_receipt', 'No receipt')], max_length=32)),
                        ('payload', models.JSONField()),
                        ('created_at', models.DateTimeField()),
                        ('message', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='feed_events', to='receipts.message')),
                    ],
                    options={'db_table': 'retries_feedevent'},
                ),
                migrations.AddField(
                    model_name='feeddelivery',
                    name='event',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='feed.feedevent'),
                ),
                migrations.CreateModel(
                    name='HistoricalProductEndpoint',
                    fields=[
                        ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                        ('secret_fingerprints', models.JSONField(blank=True, default=dict, editable=False)),
                        ('name', models.CharField(max_length=120)),
                        ('url', models.URLField(max_length=500)),
                        ('event_types', models.JSONField(blank=True, default=list, validators=[retries.feed.models.validate_event_types])),
                        ('enabled', models.BooleanField(default=True)),
                        ('disabled_reason', models.CharField(blank=True, max_length=255)),
                        ('created_at', models.DateTimeField(blank=True, editable=False)),
                        ('updated_at', models.DateTimeField(blank=True, editable=False)),
                        ('history_id', models.AutoField(primary_key=True, serialize=False)),
                        ('history_date', models.DateTimeField(db_index=True)),
                        ('history_change_reason', models.CharField(max_length=100, null=True)),
                        ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                        ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'retries_historicalproductendpoint',
                        'verbose_name': 'historical product endpoint',
                        'verbose_name_plural': 'historical product endpoints',
                        'ordering': ('-history_date', '-history_id'),
                        'get_latest_by': ('history_date', 'history_id'),
                    },
                    bases=(simple_history.models.HistoricalChanges, models.Model),
                ),
                migrations.AddField(
                    model_name='feeddelivery',
                    name='endpoint',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='feed.productendpoint'),
                ),
                migrations.AddIndex(
                    model_name='feeddelivery',
                    index=models.Index(condition=models.Q(('status__in', ['pending', 'failed'])), fields=['next_attempt_at'], name='feed_delivery_due_idx'),
                ),
                migrations.AddIndex(
                    model_name='feeddelivery',
                    index=models.Index(fields=['endpoint', 'message', 'event'], name='feed_delivery_order_idx'),
                ),
                migrations.AddConstraint(
                    model_name='feeddelivery',
                    constraint=models.UniqueConstraint(fields=('event', 'endpoint'), name='feed_delivery_unique'),
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='productendpoint', table=None),
        migrations.AlterModelTable(name='feeddelivery', table=None),
        migrations.AlterModelTable(name='feedattempt', table=None),
        migrations.AlterModelTable(name='feedevent', table=None),
        migrations.AlterModelTable(name='historicalproductendpoint', table=None),
        migrations.RunPython(relabel, relabel_back),
    ]
