"""Product endpoints managed through the API: an owner, a pause that holds deliveries, a
rotated secret kept signing for a grace period, and replays that restart the schedule."""

import django.db.models.deletion
import dlrconsole.lib.secrets_at_rest
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('feed', '0004_webhook_id'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='productendpoint',
            options={'permissions': [('manage_own_productendpoint', 'Can manage its own product endpoints through the API')]},
        ),
        migrations.AddField(
            model_name='feeddelivery',
            name='attempts_before_replay',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='historicalproductendpoint',
            name='owner',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='historicalproductendpoint',
            name='paused_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='historicalproductendpoint',
            name='previous_secret_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='productendpoint',
            name='owner',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='feed_endpoints', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='productendpoint',
            name='paused_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='productendpoint',
            name='previous_secret',
            field=dlrconsole.lib.secrets_at_rest.EncryptedTextField(blank=True, default=''),
        ),
        migrations.AddField(
            model_name='productendpoint',
            name='previous_secret_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
