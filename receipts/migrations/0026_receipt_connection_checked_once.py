"""A receipt's connection is no longer a database constraint: PostgreSQL checked it once per
inserted row, every row of a batch naming the same connection. Dropping a constraint rewrites
nothing and takes a moment at any size. receipts/connection_deletion.py keeps a connection with
receipts from being deleted."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('receipts', '0025_message_flow_one_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='receipt',
            name='connection',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='receipts', to='receipts.connection'),
        ),
    ]
